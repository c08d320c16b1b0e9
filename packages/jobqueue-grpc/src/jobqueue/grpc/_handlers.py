"""Registering a servicer: request decoding and error translation in one place.

The code protoc generates (``add_*Servicer_to_server``) decodes requests with
``Message.FromString``; when that fails — invalid UTF-8 in a string field, a
truncated message — gRPC Python answers INTERNAL, blaming the server for the
caller's bytes. So we register handlers ourselves, built from the service's
descriptor: the deserializer never raises, and a request that cannot be decoded
is answered INVALID_ARGUMENT before the servicer sees it. The same wrapper maps
every exception a servicer raises through the one status table.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from ._status import status_for

_log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
UnaryMethod = Callable[[Any, Context], Awaitable[Message]]
StreamMethod = Callable[[Any, Context], AsyncIterator[Message]]


class MalformedRequest:
    """What the deserializer hands over instead of raising: the bytes were no valid request."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def service_handler(
    descriptor: ServiceDescriptor, servicer: object
) -> grpc.GenericRpcHandler[Any, Any]:
    """A handler serving every method of ``descriptor`` with ``servicer``'s method of that name.

    Raises TypeError at registration, not at the first call, if the servicer
    lacks a method or the service has client streaming (which nothing here needs).
    """
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in descriptor.methods:
        implementation = getattr(servicer, method.name, None)
        if not callable(implementation):
            raise TypeError(f"{type(servicer).__name__} does not implement {method.full_name}")
        handlers[method.name] = _method_handler(method, implementation)
    return grpc.method_handlers_generic_handler(descriptor.full_name, handlers)


def _method_handler(
    method: MethodDescriptor, implementation: Any
) -> grpc.RpcMethodHandler[Any, Any]:
    if method.client_streaming:
        raise TypeError(f"{method.full_name}: client streaming is not supported")
    deserialize = _safe_deserializer(GetMessageClass(method.input_type))
    serialize = _serialize
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(
            _stream_behaviour(method.full_name, cast(StreamMethod, implementation)),
            request_deserializer=deserialize,
            response_serializer=serialize,
        )
    return grpc.unary_unary_rpc_method_handler(
        _unary_behaviour(method.full_name, cast(UnaryMethod, implementation)),
        request_deserializer=deserialize,
        response_serializer=serialize,
    )


def _safe_deserializer(message_class: type[Message]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Message | MalformedRequest:
        try:
            return message_class.FromString(data)
        except Exception as error:  # DecodeError, or whatever the C runtime raises
            return MalformedRequest(str(error) or type(error).__name__)

    return deserialize


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


async def _reject_malformed(request: object, context: Context, method: str) -> None:
    if isinstance(request, MalformedRequest):
        _log.info("%s: undecodable request from %s: %s", method, context.peer(), request.reason)
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request is not a valid {method} request message: {request.reason}",
        )


def _unary_behaviour(
    method: str, implementation: UnaryMethod
) -> Callable[[Any, Context], Awaitable[Message]]:
    async def behaviour(request: Any, context: Context) -> Message:
        await _reject_malformed(request, context, method)
        try:
            return await implementation(request, context)
        except grpc.aio.AbortError:
            raise  # the servicer already chose a status
        except Exception as error:
            code, details = status_for(error)
            await context.abort(code, details)

    return behaviour


def _stream_behaviour(
    method: str, implementation: StreamMethod
) -> Callable[[Any, Context], AsyncIterator[Message]]:
    async def behaviour(request: Any, context: Context) -> AsyncIterator[Message]:
        await _reject_malformed(request, context, method)
        try:
            async for response in implementation(request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            code, details = status_for(error)
            await context.abort(code, details)

    return behaviour
