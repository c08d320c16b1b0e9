"""The samples the overview's charts draw: from the store's history, or a ring in memory.

With a store that keeps counters (``jobqueue.domain.JobCounters``) the
charts read its series: the servers sample the store's cumulative counters
into it (one sample per bucket, however many servers run), so the charts
survive a restart and every server draws the same ones. Finished counts
there never shrink (they are counters, not the retention window's counts),
and the depth drawn is the jobs not yet finished.

Without one, a bounded ring in the server's memory samples ``stats()``; it
is lost on a restart.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from jobqueue.domain import Clock, CounterSample, JobCounters, QueueStats

STATES = ("pending", "scheduled", "running", "completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """The store's totals at one moment (``at_ms``).

    From ``stats()``: jobs per state now. From the store's counters: the
    finished totals since counting began and ``unfinished`` (stored, not yet
    finished); the per-state counts of unfinished jobs are then 0.
    """

    at_ms: int
    pending: int = 0
    scheduled: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    unfinished: int = 0

    @classmethod
    def of(cls, at_ms: int, stats: QueueStats) -> Sample:
        total = stats.total
        counts = {state: getattr(total, state) for state in STATES}
        unfinished = total.pending + total.scheduled + total.running
        return cls(at_ms=at_ms, unfinished=unfinished, **counts)

    @classmethod
    def of_counters(cls, sample: CounterSample) -> Sample:
        finished = sample.completed + sample.failed + sample.cancelled
        return cls(
            at_ms=sample.at_ms,
            completed=sample.completed,
            failed=sample.failed,
            cancelled=sample.cancelled,
            unfinished=max(sample.enqueued - finished, 0),
        )

    def count(self, state: str) -> int:
        value: int = getattr(self, state)
        return value


class StatsHistory:
    """The last ``capacity`` samples of ``stats()``, oldest first, in memory."""

    depth_states = ("pending", "scheduled", "running")
    """What the depth chart draws from these samples."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._samples: deque[Sample] = deque(maxlen=capacity)

    def record(self, at_ms: int, stats: QueueStats) -> Sample:
        sample = Sample.of(at_ms, stats)
        self._samples.append(sample)
        return sample

    def samples(self) -> list[Sample]:
        return list(self._samples)

    async def read(self) -> list[Sample]:
        return self.samples()

    def __len__(self) -> int:
        return len(self._samples)


class StoreHistory:
    """The store's own series over the last ``window_ms``; nothing is kept here."""

    depth_states = ("unfinished",)

    def __init__(self, store: JobCounters, *, clock: Clock, window_ms: int) -> None:
        if window_ms <= 0:
            raise ValueError("window_ms must be positive")
        self._store = store
        self._clock = clock
        self._window_ms = window_ms

    async def read(self) -> list[Sample]:
        since = self._clock.now_ms() - self._window_ms
        return [Sample.of_counters(s) for s in await self._store.samples(since_ms=since)]
