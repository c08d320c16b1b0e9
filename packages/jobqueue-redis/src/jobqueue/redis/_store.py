"""The JobStore port on Redis: one hash per job, sorted sets per type, Lua for every change.

This module is the face: each operation lives in the module named for it
(_enqueue.py, _leasing.py, _admin.py, _watching.py) over the connections and
shard layout they share (_core.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from jobqueue.domain import (
    BulkAction,
    BulkResult,
    Clock,
    CounterSample,
    Job,
    JobFilter,
    JobPage,
    JobQuery,
    Lease,
    LeaseState,
    Outcome,
    QueueStats,
    TypeCounters,
    TypeLimits,
    WorkerInfo,
)

from ._actions import Actions
from ._admin import Admin
from ._core import StoreCore
from ._counters import Counters
from ._enqueue import Enqueuer
from ._errors import translated
from ._gates import Gates, with_paused
from ._leasing import MAX_CLAIM, Leasing
from ._presence import Presence, with_workers
from ._progress import Progress, ProgressReport
from ._settings import RedisStoreSettings
from ._watching import Watching

__all__ = ["MAX_CLAIM", "RedisJobStore"]


class RedisJobStore:
    """Jobs in Redis, shared by any number of servers and workers.

    Nothing connects until the first call. Writes are never retried here: a
    write whose reply was lost may have been applied, and only the caller
    knows whether repeating it is safe (an idempotency key makes an enqueue
    safe to repeat). Reads are retried on a fresh connection.
    """

    def __init__(self, settings: RedisStoreSettings, *, clock: Clock | None = None) -> None:
        # ``clock`` is accepted for the JobStore family's constructor shape and
        # ignored: every time this store uses is Redis's own (TIME in the scripts).
        del clock
        self._settings = settings
        self._core = StoreCore(settings)
        self._admin = Admin(self._core)
        self._enqueuer = Enqueuer(self._core, self._admin.get)
        self._leasing = Leasing(self._core)
        self._progress = Progress(self._core)
        self._watching = Watching(self._core, self._admin.get)
        self._actions = Actions(self._core, self._admin)
        self._gates = Gates(self._core)
        self._presence = Presence(self._core)
        self._counters = Counters(self._core)

    @property
    def settings(self) -> RedisStoreSettings:
        return self._settings

    # -- producers -------------------------------------------------------------

    async def add(self, jobs: Sequence[Job], *, batch_key: str | None = None) -> list[Job]:
        """Store new jobs; see ``Enqueuer.add`` for how concurrent calls share a script."""
        await self._core.resolve_layout(writing=True)
        return await self._enqueuer.add(jobs, batch_key=batch_key)

    async def get(self, job_id: str) -> Job | None:
        await self._core.resolve_layout()
        return await self._admin.get(job_id)

    async def cancel(self, job_id: str) -> Job:
        await self._core.resolve_layout()
        return await self._admin.cancel(job_id)

    # -- workers ---------------------------------------------------------------

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Lease]:
        await self._core.resolve_layout()
        return await self._leasing.claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        await self._core.resolve_layout()
        return await self._leasing.settle(outcomes)

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        await self._core.resolve_layout()
        return await self._leasing.renew(leases, lease_ms=lease_ms)

    async def report_progress(self, reports: Sequence[ProgressReport]) -> list[bool]:
        """Progress on jobs whose lease is held (jobqueue.domain.ProgressStore); a watch event."""
        await self._core.resolve_layout()
        return await self._progress.report(reports)

    async def requeue_expired(self, *, limit: int = 1_000, lock_ms: int = 0) -> int:
        """The sweep, shard by shard: each shard has its own lock and ``limit``."""
        await self._core.resolve_layout()
        return await self._leasing.requeue_expired(limit=limit, lock_ms=lock_ms)

    # -- operators -------------------------------------------------------------

    async def list_jobs(self, query: JobQuery) -> JobPage:
        await self._core.resolve_layout()
        return await self._admin.list_jobs(query)

    async def stats(self) -> QueueStats:
        await self._core.resolve_layout()
        stats = with_paused(await self._admin.stats(), await self._gates.paused_types())
        return with_workers(stats, await self._presence.list_workers())

    # -- worker presence (jobqueue.domain.PresenceStore) -------------------------

    async def heartbeat(self, worker: WorkerInfo, *, ttl_ms: int) -> WorkerInfo:
        """On the prefix's one fixed hash tag, whatever the shard layout (_presence.py)."""
        return await self._presence.heartbeat(worker, ttl_ms)

    async def deregister(self, worker_id: str) -> bool:
        return await self._presence.deregister(worker_id)

    async def list_workers(self) -> list[WorkerInfo]:
        return await self._presence.list_workers()

    async def worker_counts(self) -> dict[str, int]:
        return await self._presence.worker_counts()

    # -- claim-time gates (jobqueue.domain.TypeGates) ----------------------------

    async def pause_type(self, job_type: str) -> bool:
        await self._core.resolve_layout(writing=True)
        return await self._gates.set_paused(job_type, True)

    async def resume_type(self, job_type: str) -> bool:
        await self._core.resolve_layout(writing=True)
        return await self._gates.set_paused(job_type, False)

    async def paused_types(self) -> list[str]:
        await self._core.resolve_layout()
        return await self._gates.paused_types()

    async def set_type_limits(self, job_type: str, limits: TypeLimits) -> None:
        await self._core.resolve_layout(writing=True)
        await self._gates.set_limits(job_type, limits)

    async def type_limits(self, job_type: str) -> TypeLimits:
        await self._core.resolve_layout()
        return await self._gates.limits(job_type)

    # -- operators' writes (jobqueue.domain.AdminStore) ---------------------------

    async def retry(self, job_id: str) -> Job:
        await self._core.resolve_layout()
        return await self._actions.retry(job_id)

    async def delete(self, job_id: str) -> Job:
        await self._core.resolve_layout()
        return await self._actions.delete(job_id)

    async def bulk(
        self, action: BulkAction, job_filter: JobFilter, *, limit: int, cursor: str
    ) -> BulkResult:
        await self._core.resolve_layout()
        return await self._actions.bulk(action, job_filter, limit=limit, cursor=cursor)

    # -- counters and their history (jobqueue.domain.JobCounters) -----------------

    async def counters(self) -> list[TypeCounters]:
        await self._core.resolve_layout()
        return await self._counters.counters()

    async def record_sample(self, *, interval_ms: int, keep: int) -> bool:
        await self._core.resolve_layout()
        return await self._counters.record_sample(interval_ms=interval_ms, keep=keep)

    async def samples(self, *, since_ms: int = 0) -> list[CounterSample]:
        await self._core.resolve_layout()
        return await self._counters.samples(since_ms=since_ms)

    def watch(self, job_id: str) -> AsyncIterator[Job]:
        return self._watching.watch(job_id)

    def cancellations(self) -> AsyncIterator[str]:
        """Ids of RUNNING jobs whose cancel was requested (see ``Watching.cancellations``)."""
        return self._watching.cancellations()

    async def check_layout(self) -> int:
        """Learn the shard layout now (it is learnt at the first call otherwise): its shards.

        For a process to fail at start, not at its first call, when its
        ``shards`` setting disagrees with Redis's record (ShardLayoutMismatch,
        see _layout.py); StoreUnavailable when Redis cannot be reached.
        """
        await self._core.resolve_layout()
        return self._core.shards

    async def ping(self) -> None:
        with translated():
            await self._core.hot.execute("PING")

    async def close(self) -> None:
        await self._leasing.close()
        await self._watching.subscriber.close()
        await self._core.connections.aclose()
