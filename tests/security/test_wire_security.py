"""Auth and TLS on every protocol of the one port: Connect, gRPC-Web and gRPC, HTTP/1.1 and HTTP/2.

The same bearer tokens, the same open health service, the same certificates
and client-certificate rule as the grpcio tests (test_auth.py, test_tls.py),
asked through connectrpc's clients so each protocol is spoken as an outside
client speaks it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from grpc_health.v1 import health_pb2

from jobqueue.grpc import INVALID_TOKEN, MISSING_TOKEN, BearerTokenAuth, ServerTls
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import admin_pb2, jobqueue_pb2, schedule_pb2, worker_pb2
from tests.security._pki import Pki
from tests.security._services import api_services
from tests.server._wire import WIRES, Wire, WireServer, method, start_wire, wire_client

TOKEN = "s3cret-token-0123456789abcdef"
NEXT_TOKEN = "next-token-fedcba9876543210"

RPCS = [
    (service.name, m.name, m.server_streaming)
    for module in (jobqueue_pb2, worker_pb2, admin_pb2, schedule_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for m in service.methods
]


@pytest.fixture
async def secured() -> AsyncIterator[WireServer]:
    server = await start_wire(MemoryJobStore(), auth=BearerTokenAuth([TOKEN, NEXT_TOKEN]))
    try:
        yield server
    finally:
        await server.stop()


async def call(
    url: str, wire: Wire, service: str, name: str, streaming: bool, headers: dict[str, str]
) -> Code | None:
    """The code an empty request to ``service/name`` ends with; None when it succeeds."""
    info = method(service, name)
    async with wire_client(url, wire) as client:
        try:
            if streaming:
                stream = client.client.execute_server_stream(
                    request=info.input(), method=info, headers=headers, timeout_ms=3_000
                )
                async for _ in stream:
                    break
                await stream.aclose()  # type: ignore[attr-defined]
            else:
                await client.client.execute_unary(
                    request=info.input(), method=info, headers=headers, timeout_ms=3_000
                )
        except ConnectError as error:
            return error.code
    return None


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_every_rpc_on_every_wire_needs_the_token(secured: WireServer, wire: Wire) -> None:
    for service, name, streaming in RPCS:
        for headers in (
            {},
            {"authorization": "Bearer wrong-token-0123456789abcdef"},
            {"authorization": f"Basic {TOKEN}"},
            {"authorization": TOKEN},
        ):
            code = await call(secured.url, wire, service, name, streaming, headers)
            assert code == Code.UNAUTHENTICATED, (name, headers)
    assert sum(row.pending for row in (await secured.store.stats()).types) == 0


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_the_messages_say_missing_or_invalid(secured: WireServer, wire: Wire) -> None:
    async with wire_client(secured.url, wire) as client:
        for headers, message in (
            ({}, MISSING_TOKEN),
            ({"authorization": "Bearer x"}, INVALID_TOKEN),
        ):
            with pytest.raises(ConnectError) as caught:
                await client.unary(
                    "JobService", "GetJob", jobqueue_pb2.GetJobRequest(id="x"), headers=headers
                )
            assert caught.value.code == Code.UNAUTHENTICATED
            assert caught.value.message == message


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_either_token_reaches_the_servicer_and_health_is_open(
    secured: WireServer, wire: Wire
) -> None:
    async with wire_client(secured.url, wire) as client:
        for token in (TOKEN, NEXT_TOKEN):
            reply = await client.unary(
                "JobService",
                "EnqueueJob",
                jobqueue_pb2.EnqueueJobRequest(type="t"),
                headers={"authorization": f"Bearer {token}"},
            )
            assert reply.job.type == "t"
        health = await client.client.execute_unary(
            request=health_pb2.HealthCheckRequest(),
            method=_health_check(),
            timeout_ms=3_000,
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_the_auth_test_covers_every_rpc() -> None:
    # Every service of every API file: a new RPC or service is covered by itself.
    covered = {f"mpataki.jobqueue.v1.{service}" for service, _, _ in RPCS}
    assert covered == set(api_services())
    assert ("JobService", "WatchJob", True) in RPCS


def _health_check() -> MethodInfo[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]:
    return MethodInfo(
        name="Check",
        service_name="grpc.health.v1.Health",
        input=health_pb2.HealthCheckRequest,
        output=health_pb2.HealthCheckResponse,
        idempotency_level=IdempotencyLevel.NO_SIDE_EFFECTS,
        stream_type=StreamType.UNARY,
    )


def _tls(pki: Pki, *, mutual: bool) -> ServerTls:
    return ServerTls.from_files(
        cert_file=pki.server.cert,
        key_file=pki.server.key,
        client_ca_file=pki.ca.cert if mutual else None,
    )


async def _enqueue(url: str, wire: Wire, **tls: bytes | None) -> str:
    async with wire_client(url, wire, **tls) as client:
        reply = await client.unary(
            "JobService", "EnqueueJob", jobqueue_pb2.EnqueueJobRequest(type="t")
        )
        job_id: str = reply.job.id
        return job_id


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_tls_on_every_wire(pki: Pki, wire: Wire) -> None:
    server = await start_wire(MemoryJobStore(), tls=_tls(pki, mutual=False))
    try:
        https = f"https://localhost:{server.server.port}"
        assert await _enqueue(https, wire, ca=pki.ca_pem)
        # Plaintext to a TLS port, and TLS without trusting the server's CA, both fail.
        for url, ca in ((server.url, pki.ca_pem), (https, None)):
            with pytest.raises((ConnectError, OSError)):
                await _enqueue(url, wire, ca=ca)
    finally:
        await server.stop()


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_mutual_tls_on_every_wire(pki: Pki, wire: Wire) -> None:
    server = await start_wire(MemoryJobStore(), tls=_tls(pki, mutual=True))
    try:
        https = f"https://localhost:{server.server.port}"
        good = {"cert": pki.client.cert.read_bytes(), "key": pki.client.key.read_bytes()}
        assert await _enqueue(https, wire, ca=pki.ca_pem, **good)
        rogue = {
            "cert": pki.rogue_client.cert.read_bytes(),
            "key": pki.rogue_client.key.read_bytes(),
        }
        for client in ({}, rogue):
            with pytest.raises((ConnectError, OSError)):
                await _enqueue(https, wire, ca=pki.ca_pem, **client)
        assert sum(row.pending for row in (await server.store.stats()).types) == 1
    finally:
        await server.stop()
