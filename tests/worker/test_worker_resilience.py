"""The Worker when things around it go wrong: a graceful stop with jobs in flight, a lease
lost behind its back, and a source that is unreachable for a while."""

from __future__ import annotations

import asyncio

import pytest

from jobqueue.domain import JobStatus
from jobqueue.worker import (
    JobContext,
    SourceUnavailable,
)

from ._fake_sources import FlakySource, ShortenedRenewal
from ._handlers import interruptible, return_ok
from .conftest import Harness


async def test_graceful_stop_lets_short_jobs_finish_and_releases_the_rest(
    harness: Harness,
) -> None:
    worker = harness.worker()
    started: list[str] = []

    @worker.handler("quick")
    async def quick(job: JobContext) -> str:
        started.append(job.id)
        await asyncio.sleep(0.05)
        return "done"

    @worker.handler("stuck")
    async def stuck(job: JobContext) -> None:
        started.append(job.id)
        await asyncio.sleep(30)

    await worker.start()
    short = await harness.enqueue("quick")
    long = await harness.enqueue("stuck")
    await harness.wait_until(lambda: len(started) == 2)
    await worker.stop(grace_s=0.3)
    assert (await harness.store.get(short.id)) is not None
    finished = await harness.wait_status(short.id)
    assert finished.status is JobStatus.COMPLETED
    released = await harness.wait_status(long.id, JobStatus.PENDING)
    assert released.attempts == 0  # released untried: the attempt is given back
    assert worker.inflight == 0

    # Another worker takes the released job at once.
    second = harness.worker()
    second.register("stuck", return_ok)
    await second.start()
    assert (await harness.wait_status(long.id)).status is JobStatus.COMPLETED


async def test_a_lost_lease_abandons_the_handler_and_sends_no_outcome(harness: Harness) -> None:
    source = ShortenedRenewal(harness.make_source())
    # Heartbeats every 300 ms: each shortened lease lapses 200 ms before the next.
    worker = harness.worker(source, concurrency=1, requeue_interval_ms=0, lease_ms=900)
    handler, started, abandoned = interruptible()
    worker.register("slow", handler)

    await worker.start()
    job = await harness.enqueue("slow")
    await asyncio.wait_for(started.wait(), 2)
    # The store lets the lease lapse though every renew got through, so the
    # worker's own deadline is still ahead: only the store's LOST can stop it.
    source.shorten = True
    await asyncio.wait_for(abandoned.wait(), 2)
    assert source.lost
    await harness.wait_until(lambda: worker.inflight == 0)
    assert source.settled == []
    running = await harness.store.get(job.id)
    assert running is not None
    assert running.status is JobStatus.RUNNING  # until a sweep hands it back


async def test_the_worker_rides_out_an_unreachable_source(harness: Harness) -> None:
    source = FlakySource(harness.make_source(), failures=3)
    worker = harness.worker(source)
    worker.register("noop", return_ok)
    await worker.start()
    jobs = [await harness.enqueue("noop") for _ in range(10)]
    for job in jobs:
        assert (await harness.wait_status(job.id)).status is JobStatus.COMPLETED
    assert source.failed_claims == 3
    assert source.failed_settles == 3


@pytest.mark.parametrize("kind", ["claim", "settle"])
def test_fakes_fail_as_told(kind: str) -> None:
    # Guards the fakes themselves: a FlakySource that never failed would make
    # the resilience test above pass vacuously.
    async def scenario() -> int:
        from jobqueue.memory import MemoryJobStore
        from jobqueue.worker import StoreSource

        source = FlakySource(StoreSource(MemoryJobStore()), failures=1)
        call = (
            source.claim(["a"], limit=1, lease_ms=100, wait_ms=0)
            if kind == "claim"
            else source.settle([])
        )
        with pytest.raises(SourceUnavailable):
            await call
        return source.failed_claims + source.failed_settles

    assert asyncio.run(scenario()) == 1
