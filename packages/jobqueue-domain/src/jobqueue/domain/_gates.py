"""Claim-time gates on a job type: pause and resume, concurrency and rate limits.

A gate is checked by the store inside its claim, in the same atomic step
that leases jobs, so a claim that starts after ``pause_type`` returned never
leases a job of that type, on any worker. Nothing else changes: producers
still enqueue (their jobs stay PENDING), running jobs finish and settle, and a
retry of a running job goes back to PENDING behind the gate. Resuming wakes
idle workers of the type, so its due jobs start within a round trip.

Limits work the same way: a claim leases at most what the type's limits
allow at that instant (RUNNING jobs across every worker under
``concurrency``, starts within the last ``rate_interval_ms`` under ``rate``),
so a limited job is simply not claimed, never claimed and handed back.

Per-key limits apply the same caps to each ``Job.limit_key`` apart (a
customer id...): at most ``key_concurrency`` RUNNING and ``key_rate`` starts
per ``key_rate_interval_ms`` for every key. Keyed jobs of a type wait in one
queue per key, and a claim takes the keys in turns (least recently served
first, one job per key per turn), so a tenant with 10,000 jobs waiting cannot
starve one with 10; a key at its limit is skipped and set aside until its slot
or window frees, so no claim scans every key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ._errors import InvalidJob
from ._validation import validate_type

MAX_CONCURRENCY = 100_000
MAX_RATE = 1_000_000
MAX_RATE_INTERVAL_MS = 24 * 3600 * 1000
DEFAULT_RATE_INTERVAL_MS = 1_000


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeLimits:
    """A job type's global limits; None is no limit.

    ``concurrency``: at most this many of its jobs RUNNING at once, across all
    workers (a lease counts until it is settled or the sweep hands it back).
    ``rate``: at most this many starts (claims) in any ``rate_interval_ms``
    window, by the store's clock. ``key_concurrency``, ``key_rate`` and
    ``key_rate_interval_ms`` are the same for each ``limit_key`` apart; they do
    not apply to jobs without a key. Type and key limits both hold.
    """

    concurrency: int | None = None
    rate: int | None = None
    rate_interval_ms: int = DEFAULT_RATE_INTERVAL_MS
    key_concurrency: int | None = None
    key_rate: int | None = None
    key_rate_interval_ms: int = DEFAULT_RATE_INTERVAL_MS

    @property
    def unlimited(self) -> bool:
        return (
            self.concurrency is None
            and self.rate is None
            and self.key_concurrency is None
            and self.key_rate is None
        )

    @property
    def per_key(self) -> bool:
        """Whether any per-key limit is set."""
        return self.key_concurrency is not None or self.key_rate is not None


def validate_limits(limits: TypeLimits) -> TypeLimits:
    """Check limits: concurrency 1..100,000, rate 1..1,000,000 per 1 ms..1 day (per key too)."""
    for name, value, most in (
        ("concurrency", limits.concurrency, MAX_CONCURRENCY),
        ("rate", limits.rate, MAX_RATE),
        ("key_concurrency", limits.key_concurrency, MAX_CONCURRENCY),
        ("key_rate", limits.key_rate, MAX_RATE),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most
        ):
            raise InvalidJob(name, f"must be between 1 and {most}, or unset")
    for name, interval in (
        ("rate_interval_ms", limits.rate_interval_ms),
        ("key_rate_interval_ms", limits.key_rate_interval_ms),
    ):
        if not 1 <= interval <= MAX_RATE_INTERVAL_MS:
            raise InvalidJob(name, f"must be between 1 and {MAX_RATE_INTERVAL_MS}")
    return limits


@runtime_checkable
class TypeGates(Protocol):
    """The store's side of pausing job types (both stores implement it)."""

    async def pause_type(self, job_type: str) -> bool:
        """Claims skip ``job_type`` from now on; False when it was paused already."""
        ...

    async def resume_type(self, job_type: str) -> bool:
        """Claims take ``job_type`` again; False when it was not paused."""
        ...

    async def paused_types(self) -> list[str]:
        """Every paused type, sorted by name."""
        ...

    async def set_type_limits(self, job_type: str, limits: TypeLimits) -> None:
        """Replace the type's limits (``TypeLimits()`` removes them); claims apply them at once."""
        ...

    async def type_limits(self, job_type: str) -> TypeLimits:
        """The type's limits: ``TypeLimits()`` when it has none."""
        ...


class GateService:
    """Pause and resume job types, with the type validated before the store sees it."""

    def __init__(self, store: TypeGates) -> None:
        self._store = store

    async def pause_type(self, job_type: str) -> bool:
        return await self._store.pause_type(validate_type(job_type))

    async def resume_type(self, job_type: str) -> bool:
        return await self._store.resume_type(validate_type(job_type))

    async def paused_types(self) -> list[str]:
        return await self._store.paused_types()

    async def set_type_limits(self, job_type: str, limits: TypeLimits) -> None:
        await self._store.set_type_limits(validate_type(job_type), validate_limits(limits))

    async def type_limits(self, job_type: str) -> TypeLimits:
        return await self._store.type_limits(validate_type(job_type))
