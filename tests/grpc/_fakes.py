"""A fake JobStore that fails on demand, for the status-code and health tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from jobqueue.domain import (
    Job,
    JobPage,
    JobQuery,
    JobStore,
    Lease,
    LeaseState,
    Outcome,
    QueueStats,
    StoreUnavailable,
)


class FaultyStore:
    """Delegates to a real store, but raises ``error`` from every call while it is set.

    ``ping`` fails with StoreUnavailable while ``down`` is true, as a store
    whose backend went away does.
    """

    def __init__(self, inner: JobStore) -> None:
        self.inner = inner
        self.error: BaseException | None = None
        self.down = False

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    async def add(self, jobs: Sequence[Job], *, batch_key: str | None = None) -> list[Job]:
        self._check()
        return await self.inner.add(jobs, batch_key=batch_key)

    async def get(self, job_id: str) -> Job | None:
        self._check()
        return await self.inner.get(job_id)

    async def list_jobs(self, query: JobQuery) -> JobPage:
        self._check()
        return await self.inner.list_jobs(query)

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Lease]:
        self._check()
        return await self.inner.claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        self._check()
        return await self.inner.settle(outcomes)

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        self._check()
        return await self.inner.renew(leases, lease_ms=lease_ms)

    async def cancel(self, job_id: str) -> Job:
        self._check()
        return await self.inner.cancel(job_id)

    async def requeue_expired(self, *, limit: int = 1_000, lock_ms: int = 0) -> int:
        self._check()
        return await self.inner.requeue_expired(limit=limit, lock_ms=lock_ms)

    async def stats(self) -> QueueStats:
        self._check()
        return await self.inner.stats()

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        self._check()
        async for job in self.inner.watch(job_id):
            yield job

    async def cancellations(self) -> AsyncIterator[str]:
        self._check()
        async for job_id in self.inner.cancellations():
            yield job_id

    async def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("the fake backend is down")
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
