"""AdminService's claim-time gate calls of both clients, written once (as ``_calls`` does).

Pausing a type stops workers from being handed its jobs; nothing else
changes: producers still enqueue (the jobs wait, PENDING) and jobs already
running finish. Limits cap how many of a type's jobs run at once and start
per interval, across all workers. Every call here is idempotent, so they are
retried like reads; after a retry whose first reply was lost, ``changed`` may
read False for a change that attempt made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mpataki.jobqueue.v1 import admin_pb2 as pb
from mpataki.jobqueue.v1 import admin_pb2_grpc as pb_grpc

from ._calls import Unary

_STUB = pb_grpc.AdminServiceStub


def _changed(response: Any) -> bool:
    return bool(response.changed)


def pause_type(type: str) -> Unary[bool]:
    """Stop handing out jobs of ``type``, on every worker, until ``resume_type``.

    Its jobs stay PENDING and producers can still enqueue; jobs already
    running finish, and a retry of one waits behind the pause.
    ``stats()`` shows the type with ``paused`` set.

    Returns:
        True when the type was running and is now paused; False when it was
        paused already.

    Raises:
        InvalidJob: ``type`` is not a valid job type.
    """
    return Unary("PauseType", pb.PauseTypeRequest(type=type), _changed, stub=_STUB)


def resume_type(type: str) -> Unary[bool]:
    """Hand out jobs of a paused ``type`` again; idle workers of it wake at once.

    Returns:
        True when the type was paused; False when it was not.

    Raises:
        InvalidJob: ``type`` is not a valid job type.
    """
    return Unary("ResumeType", pb.ResumeTypeRequest(type=type), _changed, stub=_STUB)


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeLimits:
    """A job type's global limits; None is no limit.

    Attributes:
        concurrency: at most this many of its jobs running at once, across all workers.
        rate: at most this many starts in any window of ``rate_interval_s`` seconds.
        rate_interval_s: the rate's window (1 s unless set).
        key_concurrency: at most this many running at once per ``limit_key``.
        key_rate: at most this many starts per ``limit_key`` in any window of
            ``key_rate_interval_s`` seconds.
        key_rate_interval_s: the per-key rate's window (1 s unless set).
    """

    concurrency: int | None = None
    rate: int | None = None
    rate_interval_s: float = 1.0
    key_concurrency: int | None = None
    key_rate: int | None = None
    key_rate_interval_s: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "rate": self.rate,
            "rate_interval_s": self.rate_interval_s,
            "key_concurrency": self.key_concurrency,
            "key_rate": self.key_rate,
            "key_rate_interval_s": self.key_rate_interval_s,
        }


def _limits(response: Any) -> TypeLimits:
    message = response.limits
    return TypeLimits(
        concurrency=message.concurrency if message.HasField("concurrency") else None,
        rate=message.rate if message.HasField("rate") else None,
        rate_interval_s=(message.rate_interval_ms or 1_000) / 1000,
        key_concurrency=message.key_concurrency if message.HasField("key_concurrency") else None,
        key_rate=message.key_rate if message.HasField("key_rate") else None,
        key_rate_interval_s=(message.key_rate_interval_ms or 1_000) / 1000,
    )


def _window_ms(window: timedelta | float) -> int:
    # 0 on the wire is the server's default (1 s): a window that rounds to 0 ms or
    # less goes out as -1, which the server refuses like any window under 1 ms,
    # rather than as 1 ms (a thousand times the rate asked for) or as 1 s.
    seconds = window.total_seconds() if isinstance(window, timedelta) else window
    return max(round(seconds * 1000), -1) or -1


def set_type_limits(
    type: str,
    *,
    concurrency: int | None = None,
    rate: int | None = None,
    rate_interval_s: timedelta | float = 1.0,
    key_concurrency: int | None = None,
    key_rate: int | None = None,
    key_rate_interval_s: timedelta | float = 1.0,
) -> Unary[TypeLimits]:
    """Replace the limits of ``type``; the next claim on any worker applies them.

    A limited job is not handed out (it waits, PENDING), never handed out and
    taken back. Leave every limit unset to remove them.

    Args:
        concurrency: at most this many running at once (1 to 100,000).
        rate: at most this many starts per ``rate_interval_s`` (1 to 1,000,000).
        rate_interval_s: the rate's window: seconds or a timedelta, 1 ms to 1 day.
        key_concurrency: the same as ``concurrency``, for each ``limit_key``
            apart (jobs enqueued without one are not held by it).
        key_rate: the same as ``rate``, for each ``limit_key`` apart.
        key_rate_interval_s: ``key_rate``'s window.

    Returns:
        The limits now in force.

    Raises:
        InvalidJob: a bad type, or a value out of range (nothing changes).
    """
    limits = pb.TypeLimits(
        rate_interval_ms=_window_ms(rate_interval_s),
        key_rate_interval_ms=_window_ms(key_rate_interval_s),
    )
    if concurrency is not None:
        limits.concurrency = concurrency
    if rate is not None:
        limits.rate = rate
    if key_concurrency is not None:
        limits.key_concurrency = key_concurrency
    if key_rate is not None:
        limits.key_rate = key_rate
    request = pb.SetTypeLimitsRequest(type=type, limits=limits)
    return Unary("SetTypeLimits", request, _limits, stub=_STUB)


def type_limits(type: str) -> Unary[TypeLimits]:
    """The limits of ``type`` (all None when it has none)."""
    return Unary("GetTypeLimits", pb.GetTypeLimitsRequest(type=type), _limits, stub=_STUB)
