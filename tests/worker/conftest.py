"""The worker suite's harness: one fixture, parametrized over every way to reach jobs.

Each test gets a ``Harness`` holding a producer-side store and a factory of
worker sources for one backend, so the same test checks the direct store path
and the server path alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from jobqueue.domain import (
    Job,
    JobService,
    JobStatus,
    JobStore,
    Lease,
    LeaseState,
    Outcome,
    RetryPolicy,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.memory import MemoryJobStore
from jobqueue.worker import JobSource, StoreSource, Worker, WorkerSettings

FAST_SETTINGS = WorkerSettings(
    concurrency=20,
    lease_ms=600,
    claim_wait_ms=200,
    requeue_interval_ms=100,
    shutdown_grace_s=1.0,
    default_retry=RetryPolicy(base_ms=10, jitter=False),
    max_error_backoff_s=0.05,
)
"""Short leases and backoffs, so every behaviour shows within a fraction of a second."""


@dataclasses.dataclass
class Harness:
    """A backend seen from both sides: the producer's store and the workers' sources."""

    name: str
    store: JobStore
    make_source: Callable[[], JobSource]
    workers: list[Worker] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.service = JobService(self.store, clock=SystemClock(), ids=UuidV7Generator())

    def worker(self, source: JobSource | None = None, **overrides: Any) -> Worker:
        settings = dataclasses.replace(FAST_SETTINGS, **overrides)
        worker = Worker(source or self.make_source(), settings=settings)
        self.workers.append(worker)
        return worker

    async def enqueue(self, job_type: str, payload: bytes = b"", **options: Any) -> Job:
        return await self.service.enqueue(job_type, payload, **options)

    async def wait_status(self, job_id: str, *statuses: JobStatus, within_s: float = 5.0) -> Job:
        """Poll until the job reaches one of ``statuses``; fail with its last state otherwise."""
        wanted = statuses or (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
        job: Job | None = None
        async with asyncio.timeout(within_s):
            while True:
                job = await self.store.get(job_id)
                if job is not None and job.status in wanted:
                    return job
                await asyncio.sleep(0.005)

    async def wait_until(self, condition: Callable[[], bool], within_s: float = 2.0) -> None:
        """Poll a condition of the test's own state (no store event exists for it)."""
        async with asyncio.timeout(within_s):
            while not condition():  # noqa: ASYNC110 - nothing to wait on but the condition
                await asyncio.sleep(0.005)

    async def close(self) -> None:
        for worker in self.workers:
            await worker.stop(grace_s=0)
        await self.store.close()


@pytest.fixture(params=["memory"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """A Harness for each backend the worker supports."""
    backend: str = request.param
    store = MemoryJobStore()
    result = Harness(backend, store, lambda: StoreSource(store))
    try:
        yield result
    finally:
        await result.close()


class ForwardingSource:
    """A JobSource that passes every call to another: the base of the fakes below."""

    def __init__(self, inner: JobSource) -> None:
        self.inner = inner

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        return await self.inner.claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        return await self.inner.settle(outcomes)

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        return await self.inner.renew(leases, lease_ms=lease_ms)

    async def requeue_expired(self, *, limit: int) -> int:
        return await self.inner.requeue_expired(limit=limit)

    async def close(self) -> None:
        await self.inner.close()
