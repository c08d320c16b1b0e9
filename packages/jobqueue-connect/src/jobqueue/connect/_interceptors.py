"""Authentication and call metrics for every protocol, as connectrpc metadata interceptors.

Placed first in the interceptor list, metadata interceptors run before the
request body is read: a caller without a valid token is refused before its
bytes are decoded, as the grpcio interceptor does. The token check itself and
the metrics observer are the gRPC adapter's (``BearerTokenAuth.accepts``,
``RpcObserver``), so both transports apply one rule and report one series.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext

# The one place that knows which keyword an observer takes (duration_s, or the
# deprecated seconds): shared with grpc's interceptor, not part of either face.
from jobqueue.grpc import (
    INVALID_TOKEN,
    MISSING_TOKEN,
    BearerTokenAuth,
    RpcObserver,
    observation_reporter,
)

from ._endpoints import GRPC_CODES

_log = logging.getLogger(__name__)


def method_path(ctx: RequestContext[Any, Any]) -> str:
    """``/package.Service/Method``, as grpcio names the call."""
    return f"/{ctx.method.service_name}/{ctx.method.name}"


class AuthInterceptor:
    """Refuses UNAUTHENTICATED any call to a closed service without an accepted bearer token."""

    def __init__(self, auth: BearerTokenAuth, *, open_services: frozenset[str]) -> None:
        self._auth = auth
        self._open = open_services

    async def on_start(self, ctx: RequestContext[Any, Any]) -> None:
        if ctx.method.service_name in self._open:
            return
        authorization = ctx.request_headers.get("authorization")
        if self._auth.accepts(authorization):
            return
        details = MISSING_TOKEN if authorization is None else INVALID_TOKEN
        _log.debug("%s from %s: %s", method_path(ctx), ctx.client_address, details)
        raise ConnectError(Code.UNAUTHENTICATED, details)

    async def on_end(
        self, token: None, ctx: RequestContext[Any, Any], error: Exception | None
    ) -> None:
        return


class ObservingInterceptor:
    """Reports each call's method, final code and duration; first, so refusals count too."""

    def __init__(self, observer: RpcObserver) -> None:
        self._report = observation_reporter(observer)

    async def on_start(self, ctx: RequestContext[Any, Any]) -> float:
        return time.perf_counter()

    async def on_end(
        self, token: float, ctx: RequestContext[Any, Any], error: Exception | None
    ) -> None:
        if error is None:
            code = grpc.StatusCode.OK
        elif isinstance(error, ConnectError):
            code = GRPC_CODES.get(error.code, grpc.StatusCode.UNKNOWN)
        else:
            code = grpc.StatusCode.UNKNOWN
        self._report(method_path(ctx), code, time.perf_counter() - token)
