"""Worker presence in memory (see ``jobqueue.domain.PresenceStore``).

Each worker is kept with the store-clock time its heartbeat expires; expired
ones are dropped whenever presence is read or written, so a worker that stops
heartbeating leaves the list after its own time to live.
"""

from __future__ import annotations

from dataclasses import replace

from jobqueue.domain import MAX_LISTED_WORKERS, WorkerInfo, live_workers_by_type

from ._core import _MemoryCore


class _PresenceMixin(_MemoryCore):
    """Heartbeats, deregistration and the live-worker list."""

    async def heartbeat(self, worker: WorkerInfo, *, ttl_ms: int) -> WorkerInfo:
        now = self._clock.now_ms()
        self._prune_workers(now)
        stored = replace(worker, last_seen_at_ms=now)
        self._workers[worker.id] = (now + ttl_ms, stored)
        return stored

    async def deregister(self, worker_id: str) -> bool:
        self._prune_workers(self._clock.now_ms())
        return self._workers.pop(worker_id, None) is not None

    async def list_workers(self) -> list[WorkerInfo]:
        self._prune_workers(self._clock.now_ms())
        return [self._workers[key][1] for key in sorted(self._workers)[:MAX_LISTED_WORKERS]]

    async def worker_counts(self) -> dict[str, int]:
        self._prune_workers(self._clock.now_ms())
        return live_workers_by_type(info for _, info in self._workers.values())

    def _prune_workers(self, now: int) -> None:
        expired = [key for key, (expires_at, _) in self._workers.items() if expires_at <= now]
        for key in expired:
            del self._workers[key]
