"""The in-memory store's counters and their history (see ``jobqueue.domain.JobCounters``).

The counts move in the shared steps (``_core._finish``, ``add``, ``settle``,
``requeue_expired``) in the same synchronous step as their transition, as
the Redis scripts do; here they are only read and sampled.
"""

from __future__ import annotations

from collections import deque

from jobqueue.domain import CounterSample, TypeCounters, counters_from_pairs, totals

from ._core import _MemoryCore


class _CountersMixin(_MemoryCore):
    """Counters by type, and a bounded series of their totals, one per bucket."""

    _samples: deque[CounterSample] | None = None

    async def counters(self) -> list[TypeCounters]:
        return counters_from_pairs(self._counts)

    async def record_sample(self, *, interval_ms: int, keep: int) -> bool:
        if interval_ms <= 0 or keep <= 0:
            raise ValueError("interval_ms and keep must be positive")
        bucket = self._clock.now_ms() // interval_ms * interval_ms
        if self._samples is None or self._samples.maxlen != keep:
            self._samples = deque(self._samples or (), maxlen=keep)
        if self._samples and self._samples[-1].at_ms >= bucket:
            return False
        self._samples.append(totals(counters_from_pairs(self._counts), at_ms=bucket))
        return True

    async def samples(self, *, since_ms: int = 0) -> list[CounterSample]:
        return [sample for sample in self._samples or () if sample.at_ms >= since_ms]
