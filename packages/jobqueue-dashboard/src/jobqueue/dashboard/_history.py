"""A bounded ring of queue-count samples, what the overview's charts draw.

The store keeps counts, not their history; a ring in the server's memory
costs nothing to keep and is enough to see the last hour. It is lost on a
restart — the Prometheus metrics on /metrics are the durable history.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from jobqueue.domain import QueueStats

STATES = ("pending", "scheduled", "running", "completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """The store's totals at one moment (``at_ms``, the server's clock)."""

    at_ms: int
    pending: int
    scheduled: int
    running: int
    completed: int
    failed: int
    cancelled: int

    @classmethod
    def of(cls, at_ms: int, stats: QueueStats) -> Sample:
        total = stats.total
        return cls(at_ms=at_ms, **{state: getattr(total, state) for state in STATES})

    def count(self, state: str) -> int:
        value: int = getattr(self, state)
        return value


class StatsHistory:
    """The last ``capacity`` samples, oldest first."""

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

    def __len__(self) -> int:
        return len(self._samples)
