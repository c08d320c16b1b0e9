"""Bearer-token authentication: a server interceptor in front of every service but health."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc

_log = logging.getLogger(__name__)

HEALTH_SERVICE_NAME = "grpc.health.v1.Health"

OPEN_SERVICES: frozenset[str] = frozenset({HEALTH_SERVICE_NAME})
"""Services answered without a token: load balancers and orchestrators probe health
without credentials, and health reveals nothing but SERVING or NOT_SERVING."""

MISSING_TOKEN = "missing bearer token: send the metadata 'authorization: Bearer <token>'"
INVALID_TOKEN = "invalid bearer token"

_SCHEME = "bearer"

Continuation = Callable[
    [grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]
]


def parse_tokens(text: str) -> list[str]:
    """The tokens in ``text``: separated by commas or line breaks, surrounding blanks ignored.

    Several tokens let an operator rotate one without downtime: add the new
    token, move the clients over, remove the old one. Raises ValueError for a
    token that could not travel in gRPC metadata (whitespace or non-ASCII).
    """
    tokens = [part.strip() for line in text.splitlines() for part in line.split(",")]
    tokens = [token for token in tokens if token]
    for token in tokens:
        if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
            raise ValueError("an auth token must be printable ASCII without whitespace")
    return tokens


class BearerTokenAuth(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Answers UNAUTHENTICATED to any call without ``authorization: Bearer <token>``.

    ``tokens`` are the accepted tokens (at least one). Calls to
    ``open_services`` (by default only ``grpc.health.v1.Health``) pass without
    a token. Reflection is *not* open by default: it hands out the whole API
    schema, so tools such as ``buf curl`` must send the header too.

    A presented token is compared with every accepted one in constant time
    (``hmac.compare_digest``), all of them every time, so neither the timing
    nor the position of a match tells an attacker anything.
    """

    def __init__(
        self, tokens: Iterable[str], *, open_services: Iterable[str] = OPEN_SERVICES
    ) -> None:
        self._tokens = tuple(token.encode("ascii") for token in tokens)
        if not self._tokens:
            raise ValueError("BearerTokenAuth needs at least one token")
        if any(not token for token in self._tokens):
            raise ValueError("an auth token must not be empty")
        self._open = frozenset(open_services)

    def accepts(self, authorization: str | bytes | None) -> bool:
        """True when an ``authorization`` metadata value carries an accepted bearer token."""
        if authorization is None:
            return False
        if isinstance(authorization, bytes):
            try:
                authorization = authorization.decode("ascii")
            except UnicodeDecodeError:
                return False
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != _SCHEME:
            return False
        try:
            candidate = presented.strip().encode("ascii")
        except UnicodeEncodeError:
            return False
        matched = False
        for token in self._tokens:
            # No early exit: every token is compared on every call.
            matched |= hmac.compare_digest(candidate, token)
        return matched

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        service = method.lstrip("/").partition("/")[0]
        if service in self._open:
            return await continuation(handler_call_details)  # type: ignore[return-value]
        authorization = _authorization(handler_call_details.invocation_metadata)
        if self.accepts(authorization):
            return await continuation(handler_call_details)  # type: ignore[return-value]
        # Look the handler up only to learn its shape (unary or streaming
        # request): the rejection must be served by a handler of the same kind.
        handler = await continuation(handler_call_details)
        if handler is None:
            # UNIMPLEMENTED, token or not: the schema is public anyway, and
            # made-up method names never reach a handler (nor the metrics).
            return None  # type: ignore[return-value]
        details = MISSING_TOKEN if authorization is None else INVALID_TOKEN
        return _rejection(method, details, handler)


def _authorization(metadata: Any) -> str | bytes | None:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            found: str | bytes = value
            return found
    return None


def _rejection(
    method: str, details: str, handler: grpc.RpcMethodHandler[Any, Any]
) -> grpc.RpcMethodHandler[Any, Any]:
    async def deny(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        _log.debug("%s from %s: %s", method, context.peer(), details)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, details)

    # No deserializer: the request of a caller we refuse is never decoded.
    request_streaming = handler.request_streaming
    response_streaming = handler.response_streaming
    if request_streaming and response_streaming:

        async def stream_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            await deny(context)
            yield  # pragma: no cover - deny always raises

        return grpc.stream_stream_rpc_method_handler(stream_stream)
    if request_streaming:

        async def stream_unary(request: Any, context: Any) -> Any:
            await deny(context)

        return grpc.stream_unary_rpc_method_handler(stream_unary)
    if response_streaming:

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            await deny(context)
            yield  # pragma: no cover - deny always raises

        return grpc.unary_stream_rpc_method_handler(unary_stream)

    async def unary_unary(request: Any, context: Any) -> Any:
        await deny(context)

    return grpc.unary_unary_rpc_method_handler(unary_unary)
