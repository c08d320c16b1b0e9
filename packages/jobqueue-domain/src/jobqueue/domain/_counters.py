"""Cumulative counters of what happened to jobs, and their history.

The store keeps them, not the processes that serve it: each counter moves in
the same atomic step as the transition it counts, so every server and every
direct-path worker reports the same numbers, and they survive restarts (on
Redis). A process-local counter would count only what passed through that
process and start again from zero after each deploy.

The history is a bounded series of samples of the totals, one per interval
bucket: whichever process samples first in a bucket writes it, the others
find it written, so ten servers keep one series, not ten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

COUNTER_KINDS = ("enqueued", "completed", "failed", "retried", "cancelled", "leases_expired")
"""Every counter, in a stable order: jobs put in the queue (stored, or revived by
an operator's retry, so enqueued minus finished is the live depth), finished by
status, attempts retried (a worker's retry verdict; a release is not one),
leases that expired."""

DEFAULT_SAMPLE_INTERVAL_MS = 10_000
DEFAULT_SAMPLES_KEPT = 8_640
"""A day of 10-second samples."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeCounters:
    """Counters of one job type since the store began counting."""

    type: str
    enqueued: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    leases_expired: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CounterSample:
    """The counters summed over every type at the start of an interval bucket.

    Only totals: a sample's size must not grow with the number of types.
    Queue depth over time is ``enqueued - completed - failed - cancelled``.
    """

    at_ms: int
    enqueued: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    leases_expired: int = 0


def counters_from_pairs(pairs: dict[tuple[str, str], int]) -> list[TypeCounters]:
    """Rows by type name from ``(kind, type) -> value``; unknown kinds are ignored."""
    rows: dict[str, dict[str, int]] = {}
    for (kind, job_type), value in pairs.items():
        if kind in COUNTER_KINDS:
            rows.setdefault(job_type, {})[kind] = value
    return [TypeCounters(type=name, **rows[name]) for name in sorted(rows)]


def totals(rows: list[TypeCounters], *, at_ms: int) -> CounterSample:
    """The sample of ``rows``: each counter summed over the types."""
    sums = {kind: sum(getattr(row, kind) for row in rows) for kind in COUNTER_KINDS}
    return CounterSample(at_ms=at_ms, **sums)


@runtime_checkable
class JobCounters(Protocol):
    """The store's side of metrics (both stores implement it)."""

    async def counters(self) -> list[TypeCounters]:
        """Every type's counters, sorted by type name."""
        ...

    async def record_sample(self, *, interval_ms: int, keep: int) -> bool:
        """Write the totals as the sample of the current bucket, unless one is written.

        The bucket is the store's now rounded down to ``interval_ms``; at most
        ``keep`` samples are kept (the oldest go). True when this call wrote it.
        """
        ...

    async def samples(self, *, since_ms: int = 0) -> list[CounterSample]:
        """The kept samples at or after ``since_ms``, oldest first."""
        ...
