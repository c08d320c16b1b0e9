"""The wire app in process, and clients of each protocol for it.

The server is the real one (``WireApp`` under h2corn on a free loopback port)
over the real servicers and a store passed in. The clients are connectrpc's
(a separate implementation of Connect, gRPC and gRPC-Web on a Rust HTTP
stack), so these tests speak each protocol as an outside client would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pyqwest
from connectrpc.client import ConnectClient
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.protocol import ProtocolType
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from jobqueue.connect import HttpServer, MetricsExposition, WireApp, start_http_server
from jobqueue.domain import JobService, JobStore, SystemClock, UuidV7Generator
from jobqueue.grpc import (
    JOB_SERVICE_NAME,
    WORKER_SERVICE_NAME,
    BearerTokenAuth,
    JobServicer,
    RpcObserver,
    ServerTls,
    StoreHealth,
    WorkerServicer,
)
from mpataki.jobqueue.v1 import admin_pb2, jobqueue_pb2, schedule_pb2, worker_pb2
from tests.grpc.conftest import TEST_LIMITS, TEST_OPTIONS, operator_servicers


@dataclass(frozen=True)
class Wire:
    """A protocol, an HTTP version and a codec: one way a client may reach the server."""

    protocol: ProtocolType
    http2: bool
    json: bool = False

    @property
    def name(self) -> str:
        kind = {
            ProtocolType.CONNECT: "connect",
            ProtocolType.GRPC: "grpc",
            ProtocolType.GRPC_WEB: "grpcweb",
        }[self.protocol]
        return f"{kind}-{'h2' if self.http2 else 'http1.1'}{'-json' if self.json else ''}"


WIRES = [
    Wire(ProtocolType.CONNECT, http2=False),
    Wire(ProtocolType.CONNECT, http2=False, json=True),
    Wire(ProtocolType.CONNECT, http2=True),
    Wire(ProtocolType.CONNECT, http2=True, json=True),
    Wire(ProtocolType.GRPC_WEB, http2=False),
    Wire(ProtocolType.GRPC_WEB, http2=True),
    Wire(ProtocolType.GRPC, http2=True),
]
"""Every protocol on every HTTP version it runs on (gRPC needs HTTP/2)."""


def method(service: str, name: str) -> MethodInfo[Any, Any]:
    """The MethodInfo of ``service``'s method ``name``, from the generated descriptors."""
    services = {
        found.name: found
        for module in (jobqueue_pb2, worker_pb2, admin_pb2, schedule_pb2)
        for found in module.DESCRIPTOR.services_by_name.values()
    }
    descriptor = services[service].methods_by_name[name]
    return MethodInfo(
        name=name,
        service_name=descriptor.containing_service.full_name,
        input=GetMessageClass(descriptor.input_type),
        output=GetMessageClass(descriptor.output_type),
        idempotency_level=IdempotencyLevel.UNKNOWN,
        stream_type=StreamType.SERVER_STREAM if descriptor.server_streaming else StreamType.UNARY,
    )


@dataclass
class WireClient:
    """Calls any RPC of the API over one wire."""

    client: ConnectClient
    wire: Wire

    async def unary(
        self,
        service: str,
        name: str,
        request: Message,
        *,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return await self.client.execute_unary(
            request=request, method=method(service, name), headers=headers, timeout_ms=10_000
        )

    async def stream(
        self,
        service: str,
        name: str,
        request: Message,
        *,
        headers: dict[str, str] | None = None,
    ) -> list[Any]:
        responses = self.client.execute_server_stream(
            request=request, method=method(service, name), headers=headers, timeout_ms=10_000
        )
        return [response async for response in responses]


@asynccontextmanager
async def wire_client(
    url: str,
    wire: Wire,
    *,
    ca: bytes | None = None,
    cert: bytes | None = None,
    key: bytes | None = None,
) -> AsyncIterator[WireClient]:
    transport = pyqwest.HTTPTransport(
        http_version=pyqwest.HTTPVersion.HTTP2 if wire.http2 else pyqwest.HTTPVersion.HTTP1,
        tls_ca_cert=ca,
        tls_cert=cert,
        tls_key=key,
    )
    async with transport:
        http = pyqwest.Client(transport)
        client = ConnectClient(
            url,
            codec=google_protobuf_json_codec() if wire.json else google_protobuf_binary_codec(),
            protocol=wire.protocol,
            send_compression=None,
            http_client=http,
        )
        yield WireClient(client, wire)


@dataclass
class WireServer:
    store: JobStore
    server: HttpServer
    health: StoreHealth

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def stop(self) -> None:
        await self.health.shutdown()
        await self.server.stop(1.0)


async def start_wire(
    store: JobStore,
    *,
    auth: BearerTokenAuth | None = None,
    tls: ServerTls | None = None,
    observer: RpcObserver | None = None,
    metrics: MetricsExposition | None = None,
) -> WireServer:
    """The wire app on a free loopback port over ``store``, with the tests' small limits."""
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator(), limits=TEST_LIMITS)
    health = StoreHealth(
        store,
        services=[JOB_SERVICE_NAME, WORKER_SERVICE_NAME],
        interval_s=TEST_OPTIONS.health_check_interval_s,
        timeout_s=TEST_OPTIONS.health_check_timeout_s,
    )
    admin, schedules = operator_servicers(store)
    app = WireApp(
        admin_servicer=admin,
        schedule_servicer=schedules,
        job_servicer=JobServicer(service, options=TEST_OPTIONS),
        worker_servicer=WorkerServicer(store, limits=TEST_LIMITS, options=TEST_OPTIONS),
        health=health,
        options=TEST_OPTIONS,
        auth=auth,
        observer=observer,
        metrics=metrics,
    )
    await health.start()
    server = await start_http_server(
        app,
        address="127.0.0.1:0",
        tls=tls,
        max_message_bytes=TEST_OPTIONS.max_message_bytes,
        grace_s=1.0,
    )
    return WireServer(store=store, server=server, health=health)
