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
from jobqueue.grpc import (
    JOB_SERVICE_NAME,
    MIB,
    WORKER_SERVICE_NAME,
    JobServicer,
    RunningServer,
    ServerOptions,
    StoreHealth,
    WorkerServicer,
    start_server,
)
from jobqueue.memory import MemoryJobStore
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import GrpcSource, JobSource, StoreSource, Worker, WorkerSettings

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


async def start_test_server(store: JobStore) -> RunningServer:
    """The real server's servicers over ``store``, on a free loopback port."""
    options = ServerOptions(
        max_message_bytes=8 * MIB,
        min_lease_ms=100,
        health_check_interval_s=0.05,
        health_check_timeout_s=0.5,
    )
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    return await start_server(
        address="127.0.0.1:0",
        job_servicer=JobServicer(service, options=options),
        worker_servicer=WorkerServicer(store, options=options),
        health=StoreHealth(store, services=[JOB_SERVICE_NAME, WORKER_SERVICE_NAME]),
        options=options,
    )


@pytest.fixture(params=["memory", "grpc", pytest.param("redis", marks=pytest.mark.redis)])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """A Harness for each way a worker reaches jobs.

    ``memory``: a StoreSource on an in-memory store in this process (the
    direct path). ``grpc``: a GrpcSource through an in-process server whose
    store is in memory (the server path). ``redis``: each worker gets its own
    StoreSource on its own RedisJobStore, as separate processes would.
    """
    backend: str = request.param
    server: RunningServer | None = None
    store: JobStore
    if backend == "redis":
        settings = RedisStoreSettings(
            url=request.getfixturevalue("redis_url"),
            key_prefix=request.getfixturevalue("key_prefix").rstrip(":"),
            retention_ms=600_000,
        )
        store = RedisJobStore(settings)
        result = Harness(
            backend, store, lambda: StoreSource(RedisJobStore(settings), close_store=True)
        )
    elif backend == "grpc":
        store = MemoryJobStore()
        server = await start_test_server(store)
        target = f"127.0.0.1:{server.port}"
        result = Harness(backend, store, lambda: GrpcSource(target, timeout_s=5))
    else:
        store = MemoryJobStore()
        result = Harness(backend, store, lambda: StoreSource(store))
    try:
        yield result
    finally:
        await result.close()
        if server is not None:
            await server.stop(None)


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

    async def requeue_expired(self, *, limit: int, lock_ms: int = 0) -> int:
        return await self.inner.requeue_expired(limit=limit)

    def cancellations(self) -> AsyncIterator[str]:
        return self.inner.cancellations()

    async def close(self) -> None:
        await self.inner.close()
