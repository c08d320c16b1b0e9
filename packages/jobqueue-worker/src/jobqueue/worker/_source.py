"""Where a worker gets its jobs: a small port and its in-process implementation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from jobqueue.domain import JobStore, Lease, LeaseState, Outcome


@runtime_checkable
class JobSource(Protocol):
    """The four calls a worker makes, each batched so one round trip serves many jobs.

    The semantics are those of the same-named ``JobStore`` methods: a worker
    behaves the same whether the jobs come straight from a store or through the
    server's ``WorkerService``.
    """

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        """Lease up to ``limit`` due jobs of ``types``, waiting up to ``wait_ms`` for one."""
        ...

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply each outcome; False where its lease was no longer held."""
        ...

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        """Extend each ``(job_id, token)`` lease; report cancellations and lost leases."""
        ...

    async def requeue_expired(self, *, limit: int) -> int:
        """Give jobs of dead workers back to the queue; returns how many."""
        ...

    async def close(self) -> None:
        """Release what the source holds; called once by ``Worker.stop``."""
        ...


class StoreSource:
    """The direct path: a ``JobStore`` (Redis, or in-memory) used in this process.

    Args:
        store: the store to take jobs from.
        close_store: close the store when the worker stops. Leave it False when
            the store is shared with other code that outlives the worker.
    """

    def __init__(self, store: JobStore, *, close_store: bool = False) -> None:
        self._store = store
        self._close_store = close_store

    @property
    def store(self) -> JobStore:
        return self._store

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        return await self._store.claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        return await self._store.settle(outcomes)

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        return await self._store.renew(leases, lease_ms=lease_ms)

    async def requeue_expired(self, *, limit: int) -> int:
        return await self._store.requeue_expired(limit=limit)

    async def close(self) -> None:
        if self._close_store:
            await self._store.close()
