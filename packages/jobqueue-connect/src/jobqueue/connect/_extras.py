"""grpc.health.v1 and server reflection (v1 and v1alpha) as Connect endpoints.

Reflection v1 is v1alpha renamed: the same messages, fields and numbers
under another package. grpcio-reflection ships only v1alpha, so the v1 file is
made from it (package and type names rewritten) and added to the process's
descriptor pool: clients that describe the v1 service find it, and one
servicer (grpcio-reflection's, over that pool) answers on both paths — the
bytes of a v1 message are those of its v1alpha twin.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import Endpoint
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

from jobqueue.grpc import StoreHealth

HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"

_WATCH_POLL_S = 0.5


def health_endpoints(health: StoreHealth) -> dict[str, Endpoint[Any, Any]]:
    """Check and Watch of grpc.health.v1, reading the verdict the store's pings keep."""

    def status_of(service: str) -> health_pb2.HealthCheckResponse.ServingStatus:
        known = health.status(service)
        if known is None:
            raise ConnectError(Code.NOT_FOUND, f"unknown service {service!r}")
        return known

    async def check(
        request: health_pb2.HealthCheckRequest, ctx: RequestContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=status_of(request.service))

    async def watch(
        request: health_pb2.HealthCheckRequest, ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        # As grpcio's servicer does: the status now, then each change, until
        # the caller goes away (or the server stops, which ends every stream).
        last: int | None = None
        while True:
            known = health.status(request.service)
            current = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN if known is None else known
            if current != last:
                last = current
                yield health_pb2.HealthCheckResponse(status=current)
            await asyncio.sleep(_WATCH_POLL_S)

    def info(name: str, stream_type: StreamType) -> MethodInfo[Any, Any]:
        return MethodInfo(
            name=name,
            service_name=HEALTH_SERVICE,
            input=health_pb2.HealthCheckRequest,
            output=health_pb2.HealthCheckResponse,
            idempotency_level=IdempotencyLevel.NO_SIDE_EFFECTS,
            stream_type=stream_type,
        )

    async def list_all(
        request: health_pb2.HealthListRequest, ctx: RequestContext[Any, Any]
    ) -> health_pb2.HealthListResponse:
        response = health_pb2.HealthListResponse()
        for service in health.services:
            response.statuses[service].status = status_of(service)
        return response

    list_info = MethodInfo(
        name="List",
        service_name=HEALTH_SERVICE,
        input=health_pb2.HealthListRequest,
        output=health_pb2.HealthListResponse,
        idempotency_level=IdempotencyLevel.NO_SIDE_EFFECTS,
        stream_type=StreamType.UNARY,
    )
    return {
        f"/{HEALTH_SERVICE}/List": Endpoint.unary(method=list_info, function=list_all),
        f"/{HEALTH_SERVICE}/Check": Endpoint.unary(
            method=info("Check", StreamType.UNARY), function=check
        ),
        f"/{HEALTH_SERVICE}/Watch": Endpoint.server_stream(
            method=info("Watch", StreamType.SERVER_STREAM), function=watch
        ),
    }


def reflection_endpoints(service_names: Iterable[str]) -> dict[str, Endpoint[Any, Any]]:
    """ServerReflectionInfo under v1 and v1alpha, listing ``service_names`` and both versions."""
    names = sorted({*service_names, REFLECTION_V1, REFLECTION_V1ALPHA})
    # grpcio-reflection's asyncio servicer; its stubs do not declare the ``aio`` module.
    servicer = reflection.aio.ReflectionServicer(names)  # type: ignore[attr-defined]

    async def info_stream(
        requests: AsyncIterator[reflection_pb2.ServerReflectionRequest],
        ctx: RequestContext[Any, Any],
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        async for response in servicer.ServerReflectionInfo(requests, None):
            yield response

    v1_request, v1_response = _reflection_v1_messages()
    versions = (
        (REFLECTION_V1, v1_request, v1_response),
        (
            REFLECTION_V1ALPHA,
            reflection_pb2.ServerReflectionRequest,
            reflection_pb2.ServerReflectionResponse,
        ),
    )
    endpoints: dict[str, Endpoint[Any, Any]] = {}
    for service, request_class, response_class in versions:
        endpoints[f"/{service}/ServerReflectionInfo"] = Endpoint.bidi_stream(
            method=MethodInfo(
                name="ServerReflectionInfo",
                service_name=service,
                input=request_class,
                output=response_class,
                idempotency_level=IdempotencyLevel.UNKNOWN,
                stream_type=StreamType.BIDI_STREAM,
            ),
            function=_as_v1alpha(info_stream, request_class),
        )
    return endpoints


def _as_v1alpha(info_stream: Any, request_class: type[Message]) -> Any:
    """The v1alpha servicer behind either path: v1 requests are re-read as their v1alpha twins."""
    if request_class is reflection_pb2.ServerReflectionRequest:
        return info_stream

    async def translated(
        requests: AsyncIterator[Message], ctx: RequestContext[Any, Any]
    ) -> AsyncIterator[Message]:
        async def alpha() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
            async for request in requests:
                yield reflection_pb2.ServerReflectionRequest.FromString(request.SerializeToString())

        response_class = _reflection_v1_messages()[1]
        async for response in info_stream(alpha(), ctx):
            yield response_class.FromString(response.SerializeToString())

    return translated


def _reflection_v1_messages() -> tuple[type[Message], type[Message]]:
    """The v1 request and response classes, the v1 file added to the default pool once."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
    except KeyError:
        v1 = descriptor_pb2.FileDescriptorProto()
        reflection_pb2.DESCRIPTOR.CopyToProto(v1)
        v1.name = _V1_FILE
        v1.package = "grpc.reflection.v1"
        v1.ClearField("options")  # v1alpha's Java and C# package names
        old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
        for message in v1.message_type:
            for field in message.field:
                if field.HasField("type_name"):
                    field.type_name = field.type_name.replace(old, new)
        for service in v1.service:
            for method in service.method:
                method.input_type = method.input_type.replace(old, new)
                method.output_type = method.output_type.replace(old, new)
        pool.Add(v1)
    request = pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest")
    response = pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse")
    return GetMessageClass(request), GetMessageClass(response)


_V1_FILE = "grpc/reflection/v1/reflection.proto"
