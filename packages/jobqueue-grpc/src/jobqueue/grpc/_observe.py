"""Per-call observations (method, status code, duration) for metrics, through one interceptor."""

from __future__ import annotations

import asyncio
import inspect
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc

Continuation = Callable[
    [grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]
]


class RpcObserver(Protocol):
    """Told about every finished call; must be quick and must not raise."""

    def observe(self, *, method: str, code: grpc.StatusCode, duration_s: float) -> None:
        """``method`` is the full path (``/package.Service/Method``); ``duration_s`` in seconds."""
        ...


Report = Callable[[str, grpc.StatusCode, float], None]


def observation_reporter(observer: RpcObserver) -> Report:
    """``observer.observe`` called with the keyword it takes.

    ``duration_s`` is the name; an observer written before the unit
    convention takes ``seconds`` and keeps working, with a DeprecationWarning
    once, when the interceptor is built.
    """
    observe: Any = observer.observe
    parameters = inspect.signature(observe).parameters
    if "duration_s" not in parameters and "seconds" in parameters:
        warnings.warn(
            f"{type(observer).__name__}.observe(seconds=...) is deprecated: take duration_s",
            DeprecationWarning,
            stacklevel=3,
        )
        return lambda method, code, duration_s: observe(
            method=method, code=code, seconds=duration_s
        )
    return lambda method, code, duration_s: observe(method=method, code=code, duration_s=duration_s)


class ObservingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Reports each call's method, final status code and duration to ``observer``.

    Put it first among the interceptors so it also sees calls that a later one
    refuses (UNAUTHENTICATED). Calls to unknown methods never reach a handler
    and are not observed, so made-up method names cannot grow the label set.
    A streaming call is observed when its stream ends.
    """

    def __init__(self, observer: RpcObserver) -> None:
        self._report = observation_reporter(observer)

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # type: ignore[return-value]
        return _observed(handler_call_details.method, handler, self._report)


def _final_code(context: Any, error: BaseException | None) -> grpc.StatusCode:
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # grpc.aio reports the code as its integer value
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status
    if error is None:
        return grpc.StatusCode.OK
    # AbortError always comes with a code; anything else is what grpc answers.
    return grpc.StatusCode.UNKNOWN


def _observed(
    method: str, handler: grpc.RpcMethodHandler[Any, Any], observe: Report
) -> grpc.RpcMethodHandler[Any, Any]:
    def report(context: Any, started: float, error: BaseException | None) -> None:
        observe(method, _final_code(context, error), time.perf_counter() - started)

    def unary(behaviour: Callable[..., Any]) -> Callable[..., Any] | None:
        if not inspect.iscoroutinefunction(behaviour):
            return None

        async def observed(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            try:
                response = await behaviour(request, context)
            except BaseException as error:
                report(context, started, error)
                raise
            report(context, started, None)
            return response

        return observed

    def streaming(behaviour: Callable[..., Any]) -> Callable[..., Any] | None:
        if not inspect.isasyncgenfunction(behaviour):
            return None

        async def observed(request: Any, context: Any) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                async for response in behaviour(request, context):
                    yield response
            except BaseException as error:
                report(context, started, error)
                raise
            report(context, started, None)

        return observed

    kinds = (
        (handler.unary_unary, unary, grpc.unary_unary_rpc_method_handler),
        (handler.unary_stream, streaming, grpc.unary_stream_rpc_method_handler),
        (handler.stream_unary, unary, grpc.stream_unary_rpc_method_handler),
        (handler.stream_stream, streaming, grpc.stream_stream_rpc_method_handler),
    )
    for behaviour, wrap, build in kinds:
        if behaviour is None:
            continue
        wrapped = wrap(behaviour)
        if wrapped is None:  # a synchronous handler: served as it is, unobserved
            return handler
        built: grpc.RpcMethodHandler[Any, Any] = build(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        return built
    return handler
