"""Registered handlers and the encoding of their results."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from jobqueue.domain import RetryPolicy

if TYPE_CHECKING:
    from ._context import JobContext

AsyncHandlerFunc: TypeAlias = "Callable[[JobContext], Awaitable[Any]]"
SyncHandlerFunc: TypeAlias = "Callable[[JobContext], Any]"
HandlerFunc: TypeAlias = "AsyncHandlerFunc | SyncHandlerFunc"
"""An ``async def`` or a plain ``def`` taking the job's context; see ``encode_result``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Handler:
    """A job type's handler and the options it was registered with."""

    type: str
    func: HandlerFunc
    is_async: bool
    max_attempts: int | None
    timeout_s: float | None
    retry: RetryPolicy


def is_async_callable(func: object) -> bool:
    """True for coroutine functions, also behind ``functools.partial`` or ``__call__``."""
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - a class instance with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def encode_result(value: object) -> bytes | None:
    """Turn a handler's return value into the job's stored result, encoded once.

    bytes are stored as they are, str as UTF-8, None as no result, anything
    else as compact JSON.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
