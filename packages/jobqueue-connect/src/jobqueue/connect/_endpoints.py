"""Connect endpoints built from a service descriptor and the gRPC adapter's servicer.

The servicers of ``jobqueue.grpc`` are the one mapping from messages to use
cases; this module only lets connectrpc call them. Their methods take
``(request, context)`` and use nothing of the context but
``time_remaining()`` and ``cancelled()``, so a small adapter over connectrpc's ``RequestContext``
stands in for grpc's. Whatever a servicer raises goes through the same status
table as on grpcio (``jobqueue.grpc.status_for``) and becomes a ``ConnectError``
with the code of the same name, which connectrpc writes in each protocol's form
(Connect's JSON error and HTTP status, gRPC and gRPC-Web trailers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import Endpoint
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from jobqueue.grpc import status_for

CONNECT_CODES: Mapping[grpc.StatusCode, Code] = {
    grpc.StatusCode.CANCELLED: Code.CANCELED,
    grpc.StatusCode.UNKNOWN: Code.UNKNOWN,
    grpc.StatusCode.INVALID_ARGUMENT: Code.INVALID_ARGUMENT,
    grpc.StatusCode.DEADLINE_EXCEEDED: Code.DEADLINE_EXCEEDED,
    grpc.StatusCode.NOT_FOUND: Code.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: Code.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED: Code.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Code.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION: Code.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED: Code.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE: Code.OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED: Code.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL: Code.INTERNAL,
    grpc.StatusCode.UNAVAILABLE: Code.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS: Code.DATA_LOSS,
    grpc.StatusCode.UNAUTHENTICATED: Code.UNAUTHENTICATED,
}
"""gRPC's codes and Connect's are the same sixteen; only the spelling differs."""

GRPC_CODES: Mapping[Code, grpc.StatusCode] = {v: k for k, v in CONNECT_CODES.items()}


def connect_error(error: BaseException) -> ConnectError:
    """The ConnectError a failed call answers with, chosen by the one status table."""
    code, details = status_for(error)
    return ConnectError(CONNECT_CODES.get(code, Code.INTERNAL), details)


class ServicerContext:
    """The part of ``grpc.aio.ServicerContext`` that the servicers use, over a Connect call."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: RequestContext[Any, Any]) -> None:
        self._ctx = ctx

    def time_remaining(self) -> float | None:
        """Seconds left before the caller's deadline, None without one (as grpc answers)."""
        remaining_ms = self._ctx.timeout_ms
        return None if remaining_ms is None else remaining_ms / 1000.0

    def cancelled(self) -> bool:
        """True once the caller's deadline has passed.

        A caller that goes away is not seen here: connectrpc cancels the
        servicer's task when the connection or stream closes, so the servicer
        never runs on for a caller that left.
        """
        remaining_ms = self._ctx.timeout_ms
        return remaining_ms is not None and remaining_ms <= 0

    @property
    def request_context(self) -> RequestContext[Any, Any]:
        return self._ctx


def service_endpoints(
    descriptor: ServiceDescriptor, servicer: object
) -> dict[str, Endpoint[Any, Any]]:
    """``/package.Service/Method`` → endpoint, for every method of ``descriptor``.

    Raises TypeError at construction if the servicer lacks a method or the
    service streams requests (nothing here does).
    """
    endpoints: dict[str, Endpoint[Any, Any]] = {}
    for method in descriptor.methods:
        implementation = getattr(servicer, method.name, None)
        if not callable(implementation):
            raise TypeError(f"{type(servicer).__name__} does not implement {method.full_name}")
        endpoints[f"/{descriptor.full_name}/{method.name}"] = _endpoint(method, implementation)
    return endpoints


def _info(method: MethodDescriptor, stream_type: StreamType) -> MethodInfo[Message, Message]:
    return MethodInfo(
        name=method.name,
        service_name=method.containing_service.full_name,
        input=GetMessageClass(method.input_type),
        output=GetMessageClass(method.output_type),
        idempotency_level=IdempotencyLevel.UNKNOWN,
        stream_type=stream_type,
    )


def _endpoint(method: MethodDescriptor, implementation: Any) -> Endpoint[Any, Any]:
    if method.client_streaming:
        raise TypeError(f"{method.full_name}: client streaming is not supported")
    if method.server_streaming:
        stream = cast(Callable[[Any, Any], AsyncIterator[Message]], implementation)
        return Endpoint.server_stream(
            method=_info(method, StreamType.SERVER_STREAM), function=_streaming(stream)
        )
    unary = cast(Callable[[Any, Any], Awaitable[Message]], implementation)
    return Endpoint.unary(method=_info(method, StreamType.UNARY), function=_unary(unary))


def _unary(
    implementation: Callable[[Any, Any], Awaitable[Message]],
) -> Callable[[Message, RequestContext[Any, Any]], Awaitable[Message]]:
    async def call(request: Message, ctx: RequestContext[Any, Any]) -> Message:
        try:
            return await implementation(request, ServicerContext(ctx))
        except ConnectError:
            raise
        except Exception as error:
            raise connect_error(error) from None

    return call


def _streaming(
    implementation: Callable[[Any, Any], AsyncIterator[Message]],
) -> Callable[[Message, RequestContext[Any, Any]], AsyncIterator[Message]]:
    async def call(request: Message, ctx: RequestContext[Any, Any]) -> AsyncIterator[Message]:
        try:
            async for response in implementation(request, ServicerContext(ctx)):
                yield response
        except ConnectError:
            raise
        except Exception as error:
            raise connect_error(error) from None

    return call
