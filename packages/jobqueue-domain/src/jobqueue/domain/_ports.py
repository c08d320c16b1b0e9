"""The ports: what the domain needs from the outside world, as structural types."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from ._job import Job, JobPage, JobQuery, Lease, LeaseState, Outcome, QueueStats


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time in milliseconds since the epoch."""

    def now_ms(self) -> int: ...


@runtime_checkable
class IdGenerator(Protocol):
    """New job ids: unique, and ordered by creation time so ids sort like jobs."""

    def new_id(self) -> str: ...


@runtime_checkable
class JobStore(Protocol):
    """Durable home of jobs. Every method is atomic: it applies whole or not at all.

    Stores raise ``StoreUnavailable`` when their backend cannot be reached and
    ``CapacityExceeded`` when a configured bound refuses new jobs.
    """

    async def add(self, jobs: Sequence[Job], *, batch_key: str | None = None) -> list[Job]:
        """Store new PENDING jobs, all or none.

        A job whose ``idempotency_key`` is already known is not stored again:
        the job first stored under that key is returned in its place.
        ``batch_key`` names the whole call: for the retention period after it,
        a call with the same key stores nothing and returns the jobs the
        first call stored, as they are now.
        """
        ...

    async def get(self, job_id: str) -> Job | None:
        """The job, or None when it does not exist or its retention ran out."""
        ...

    async def list_jobs(self, query: JobQuery) -> JobPage:
        """Jobs matching the query, a page at a time.

        Order: by status (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED), then
        by type name, then PENDING by due time, RUNNING by lease deadline and
        finished jobs by finish time, ties by id. Paging through an unchanging
        store yields every match exactly once; jobs that change status while a
        listing is paged may be missed or seen twice.
        """
        ...

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Lease]:
        """Lease up to ``limit`` due PENDING jobs of the given types.

        Within a type the earliest due job goes first; across types the jobs are
        taken in turn so that no type starves another. Each claimed job becomes
        RUNNING with ``attempts + 1`` and a fresh token valid for ``lease_ms``
        of the store's own time. When nothing is due, waits up to ``wait_ms``
        for a job to become due.

        The attempt is provisional until the lease is *confirmed* by its first
        ``renew`` or ``settle``: a lease that expires unconfirmed (its reply
        never reached a worker, or the worker died at once) gives the attempt
        back and is never the reason a job fails, up to
        ``MAX_UNCONFIRMED_DELIVERIES`` times in a row; after that an
        unconfirmed expiry counts like any other, so a job that kills every
        worker at once still ends.
        """
        ...

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply each worker verdict; False where the lease is no longer held.

        A lease is no longer held when its token is stale or its deadline (by
        the store's clock) has passed: nothing changes then, even if the
        sweeper has not yet handed the job back.
        """
        ...

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        """Extend each ``(job_id, token)`` lease to the store's now + ``lease_ms``.

        Reports CANCEL_REQUESTED for a job someone asked to cancel (the lease is
        still extended, so the worker can confirm), LOST for a stale token or a
        lease whose deadline has passed (nothing changes then). The first renew
        of a lease confirms its attempt (see ``claim``).
        """
        ...

    async def cancel(self, job_id: str) -> Job:
        """Cancel a PENDING job, or ask a RUNNING job's worker to stop.

        Raises JobNotFound for an unknown id and JobAlreadyFinished for a
        terminal job. A cancelled PENDING job is never claimed afterwards.
        """
        ...

    async def requeue_expired(self, *, limit: int = 1_000, lock_ms: int = 0) -> int:
        """Hand jobs whose lease deadline passed back to the queue; returns how many.

        It also forgets finished jobs past their retention, at most ``limit``
        of each per call. Its cost follows what it finds, not how many types
        exist. With ``lock_ms`` > 0 it does nothing (returns 0) when another
        sweep, from any process, ran within the last ``lock_ms``: many servers
        and workers then sweep once between them.
        """
        ...

    def cancellations(self) -> AsyncIterator[str]:
        """Ids of RUNNING jobs whose cancellation is requested, as requests happen.

        Every iterator sees every request made while it is open, so a worker
        can stop a handler at once instead of at its next heartbeat. It is a
        hint: a request missed (during a reconnect) still reaches the worker
        as CANCEL_REQUESTED from ``renew``. Runs until closed.
        """
        ...

    async def stats(self) -> QueueStats:
        """Counts per job type."""
        ...

    def watch(self, job_id: str) -> AsyncIterator[Job]:
        """The job now, then again after each change, ending after a terminal status.

        Changes that follow each other quickly may be seen as one. Raises
        JobNotFound if the job does not exist when watching starts.
        """
        ...

    async def ping(self) -> None:
        """Return if the backend answers; raise StoreUnavailable otherwise."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
