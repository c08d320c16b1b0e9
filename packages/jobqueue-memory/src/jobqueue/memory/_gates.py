"""The in-memory store's claim-time gates: paused types and limits (see ``TypeGates``)."""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque

from jobqueue.domain import TypeLimits

from ._core import _MemoryCore


class _GatesMixin(_MemoryCore):
    """Pause and resume job types, and their limits; ``_claim_now`` applies both."""

    async def pause_type(self, job_type: str) -> bool:
        if job_type in self._paused:
            return False
        self._paused.add(job_type)
        return True

    async def resume_type(self, job_type: str) -> bool:
        if job_type not in self._paused:
            return False
        self._paused.discard(job_type)
        # Idle claims of the type sleep until something changes: this does.
        self._wake()
        return True

    async def paused_types(self) -> list[str]:
        return sorted(self._paused)

    async def set_type_limits(self, job_type: str, limits: TypeLimits) -> None:
        if limits.unlimited:
            self._limits.pop(job_type, None)
            self._starts.pop(job_type, None)
        else:
            self._limits[job_type] = limits
        if limits.key_rate is None:
            for slot in [slot for slot in self._key_starts if slot[0] == job_type]:
                del self._key_starts[slot]
        # Keys set aside under the old limits are visited again at the next
        # claim (one still held is set aside again).
        aside = self._aside.pop(job_type, {})
        self._aside_due.pop(job_type, None)
        if aside:
            turns = self._turns.setdefault(job_type, OrderedDict({"": None}))
            for key in aside:
                turns[key] = None
        # A raised limit may let an idle claim of the type take work now.
        self._wake()

    async def type_limits(self, job_type: str) -> TypeLimits:
        return self._limits.get(job_type, TypeLimits())

    def _allowance(self, job_type: str, now: int) -> int | None:
        """How many jobs of the type a claim may start now; None: no limit."""
        limits = self._limits.get(job_type)
        if limits is None:
            return None
        allowed: int | None = None
        if limits.concurrency is not None:
            running = self._type_running.get(job_type, 0)
            allowed = max(limits.concurrency - running, 0)
        if limits.rate is not None:
            starts = self._starts.setdefault(job_type, deque())
            while starts and starts[0] <= now - limits.rate_interval_ms:
                starts.popleft()
            by_rate = max(limits.rate - len(starts), 0)
            allowed = by_rate if allowed is None else min(allowed, by_rate)
        return allowed

    def _started(self, job_type: str, now: int, count: int) -> None:
        """Record ``count`` starts at ``now`` for the type's rate limit."""
        limits = self._limits.get(job_type)
        if limits is not None and limits.rate is not None and count:
            self._starts.setdefault(job_type, deque()).extend([now] * count)

    def _limited_until(self, job_type: str, now: int) -> int | None:
        """When a rate-limited type may start a job again (None: not rate-limited now)."""
        limits = self._limits.get(job_type)
        starts = self._starts.get(job_type)
        if limits is None or limits.rate is None or not starts or len(starts) < limits.rate:
            return None
        return starts[0] + limits.rate_interval_ms

    def _key_open(self, job_type: str, key: str, now: int) -> bool:
        """Whether the type's per-key limits let a claim start a job of ``key`` now."""
        limits = self._limits.get(job_type)
        if limits is None or not limits.per_key:
            return True
        running = self._key_running.get((job_type, key), 0)
        if limits.key_concurrency is not None and running >= limits.key_concurrency:
            return False
        if limits.key_rate is not None:
            starts = self._key_starts.setdefault((job_type, key), deque())
            while starts and starts[0] <= now - limits.key_rate_interval_ms:
                starts.popleft()
            if len(starts) >= limits.key_rate:
                return False
        return True

    def _key_started(self, job_type: str, key: str, now: int) -> None:
        """Record a start of ``key`` at ``now`` for the type's per-key rate."""
        limits = self._limits.get(job_type)
        if limits is not None and limits.key_rate is not None:
            self._key_starts.setdefault((job_type, key), deque()).append(now)

    def _key_limited_until(self, job_type: str, key: str) -> int | None:
        """When a key held by its per-key rate may start again (None: not so held)."""
        limits = self._limits.get(job_type)
        starts = self._key_starts.get((job_type, key))
        if limits is None or limits.key_rate is None or not starts:
            return None
        if len(starts) < limits.key_rate:
            return None
        return starts[0] + limits.key_rate_interval_ms

    def _set_aside(self, job_type: str, key: str, until: int | None) -> None:
        """Take ``key`` out of the turns until ``until`` (None: until a slot of it frees)."""
        del self._turns[job_type][key]
        self._aside.setdefault(job_type, {})[key] = until
        if until is not None:
            heapq.heappush(self._aside_due.setdefault(job_type, []), (until, key))

    def _unpark_due(self, job_type: str, now: int) -> None:
        """Bring the keys set aside until ``now`` or earlier back into the turns."""
        due = self._aside_due.get(job_type)
        aside = self._aside.get(job_type, {})
        while due and due[0][0] <= now:
            until, key = heapq.heappop(due)
            if key in aside and aside[key] == until:
                del aside[key]
                self._turns.setdefault(job_type, OrderedDict({"": None}))[key] = None
