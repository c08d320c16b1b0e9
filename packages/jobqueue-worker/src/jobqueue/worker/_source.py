"""Where a worker gets its jobs: a small port and its in-process implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from jobqueue.domain import (
    JobStore,
    Lease,
    LeaseService,
    LeaseState,
    Limits,
    Outcome,
    PresenceService,
    PresenceStore,
    ProgressReport,
    ProgressService,
    ProgressStore,
    WorkerInfo,
)


@runtime_checkable
class JobSource(Protocol):
    """The calls a worker makes, each batched so one round trip serves many jobs.

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

    async def requeue_expired(self, *, limit: int, lock_ms: int = 0) -> int:
        """Give jobs of dead workers back to the queue; returns how many.

        With ``lock_ms`` > 0, does nothing when another process swept within it.
        """
        ...

    def cancellations(self) -> AsyncIterator[str]:
        """Ids of running jobs whose cancellation was requested, as the requests happen.

        The worker consumes one such iterator for its whole life (opening a new
        one with backoff when it ends or fails) so a handler is stopped at once
        rather than at the next heartbeat. It is a hint: ``renew`` stays the
        authority, so a request missed during a reconnect still arrives.
        """
        ...

    async def close(self) -> None:
        """Release what the source holds; called once by ``Worker.stop``."""
        ...


@runtime_checkable
class ProgressSource(Protocol):
    """A source that stores handlers' progress (``JobContext.progress``): both of jobqueue's do.

    Optional beside ``JobSource``: on a source without it, progress reports go nowhere.
    """

    async def report_progress(self, reports: Sequence[ProgressReport]) -> list[bool]:
        """Store each report while its lease is held; False where it is not."""
        ...


@runtime_checkable
class SettleClaimSource(Protocol):
    """A source that settles a batch and claims in the same call: both of jobqueue's do.

    Optional beside ``JobSource``: a busy worker settles a batch and takes as
    many jobs as it freed in one call instead of two (through the server, one
    gRPC call fewer per batch). A worker on a source without it claims with
    ``claim`` only.
    """

    async def settle_then_claim(
        self, outcomes: Sequence[Outcome], types: Sequence[str], *, limit: int, lease_ms: int
    ) -> tuple[list[bool], list[Lease]]:
        """``settle``, then lease up to ``limit`` due jobs without waiting.

        The verdicts are ``settle``'s; the leases may be none (nothing due,
        or the claim could not run after the settle), after which the worker
        claims with ``claim``.
        """
        ...


@runtime_checkable
class PresenceSource(Protocol):
    """A source that can say this worker is alive: both of jobqueue's sources can.

    Optional beside ``JobSource``: a worker on a source without it runs all
    the same, and is not listed by ``ListWorkers``.
    """

    async def heartbeat(self, worker: WorkerInfo, *, ttl_ms: int, stopping: bool = False) -> None:
        """Keep ``worker`` listed for ``ttl_ms`` of the store's time; ``stopping`` drops it."""
        ...


class StoreSource:
    """The direct path: a ``JobStore`` (Redis, or in-memory) used in this process.

    Every call goes through the domain's ``LeaseService``, as the server's
    ``WorkerService`` does, so the same rules (the result limit above all)
    hold on both paths.

    Args:
        store: the store to take jobs from.
        close_store: close the store when the worker stops. Leave it False when
            the store is shared with other code that outlives the worker.
        limits: the limits outcomes are judged by; match the server's when
            a deployment tunes them (the default is ``Limits()``).
    """

    def __init__(
        self, store: JobStore, *, close_store: bool = False, limits: Limits | None = None
    ) -> None:
        self._store = store
        self._close_store = close_store
        self._limits = limits
        self._leases = LeaseService(store, limits=limits)
        # Both of jobqueue's stores keep worker presence; a store of one's own may not.
        self._presence = PresenceService(store) if isinstance(store, PresenceStore) else None

    @property
    def store(self) -> JobStore:
        return self._store

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        return await self._leases.claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        return await self._leases.settle(outcomes)

    async def settle_then_claim(
        self, outcomes: Sequence[Outcome], types: Sequence[str], *, limit: int, lease_ms: int
    ) -> tuple[list[bool], list[Lease]]:
        return await self._leases.settle_then_claim(outcomes, types, limit=limit, lease_ms=lease_ms)

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        return await self._leases.renew(leases, lease_ms=lease_ms)

    async def requeue_expired(self, *, limit: int, lock_ms: int = 0) -> int:
        return await self._leases.requeue_expired(limit=limit, lock_ms=lock_ms)

    def cancellations(self) -> AsyncIterator[str]:
        return self._leases.cancellations()

    async def report_progress(self, reports: Sequence[ProgressReport]) -> list[bool]:
        """The progress use case on the store (the server path runs the same one)."""
        if not isinstance(self._store, ProgressStore):
            return [False] * len(reports)
        return await ProgressService(self._store, limits=self._limits).report(reports)

    async def heartbeat(self, worker: WorkerInfo, *, ttl_ms: int, stopping: bool = False) -> None:
        """The presence use case on the store; nothing when the store keeps no presence."""
        if self._presence is not None:
            await self._presence.heartbeat(worker, ttl_ms=ttl_ms, stopping=stopping)

    async def close(self) -> None:
        if self._close_store:
            await self._store.close()
