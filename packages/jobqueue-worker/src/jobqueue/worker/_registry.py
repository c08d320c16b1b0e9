"""The handler registry: which function runs which job type, with which options."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from jobqueue.domain import RetryPolicy, validate_type

from ._context import JobContext
from ._errors import HandlerAlreadyRegistered, WorkerStateError
from ._handler import Handler, HandlerFunc, is_async_callable
from ._settings import WorkerSettings

CallNext: TypeAlias = Callable[[], Awaitable[Any]]
Middleware: TypeAlias = Callable[[JobContext, CallNext], Awaitable[Any]]
"""Wraps every job: ``async def mw(ctx, call_next): ... return await call_next()``.

It sees the context before the handler runs, the handler's return value (and
may replace it) and any exception the handler raises (and may translate it).
"""

Invoke: TypeAlias = Callable[[JobContext], Awaitable[Any]]


class HandlerRegistry:
    """The handlers and middleware of one worker; frozen once the worker starts."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.middlewares: list[Middleware] = []
        self.frozen = False

    def register(
        self,
        job_type: str,
        func: HandlerFunc,
        settings: WorkerSettings,
        *,
        max_attempts: int | None,
        timeout_s: float | None,
        retry: RetryPolicy | None,
    ) -> None:
        if self.frozen:
            raise WorkerStateError("handlers must be registered before the worker starts")
        validate_type(job_type)
        if job_type in self.handlers:
            raise HandlerAlreadyRegistered(job_type)
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.handlers[job_type] = Handler(
            type=job_type,
            func=func,
            is_async=is_async_callable(func),
            max_attempts=max_attempts,
            timeout_s=timeout_s if timeout_s is not None else settings.default_timeout_s,
            retry=retry or settings.default_retry,
        )

    def add_middleware(self, middleware: Middleware) -> None:
        if self.frozen:
            raise WorkerStateError("middleware must be added before the worker starts")
        self.middlewares.append(middleware)

    def chain(self, invoke: Invoke) -> Invoke:
        """``invoke`` wrapped in every middleware, the first added outermost."""
        chain = invoke
        for middleware in reversed(self.middlewares):
            chain = functools.partial(_call_middleware, middleware, chain)
        return chain


def timeout_alias(timeout_s: float | None, timeout: float | None) -> float | None:
    """``timeout_s``, or the deprecated ``timeout`` it replaced (one unit convention: ``_s``)."""
    if timeout is None:
        return timeout_s
    warnings.warn(
        "timeout= is deprecated: use timeout_s= (seconds)", DeprecationWarning, stacklevel=3
    )
    if timeout_s is not None:
        raise TypeError("give timeout_s or the deprecated timeout, not both")
    return timeout


async def _call_middleware(middleware: Middleware, call_next: Invoke, ctx: JobContext) -> Any:
    return await middleware(ctx, functools.partial(call_next, ctx))
