"""Cancelling a job before and while it runs, for async and thread handlers, against every
backend of the ``harness`` fixture."""

from __future__ import annotations

import asyncio
import threading
import time

from jobqueue.domain import JobStatus
from jobqueue.worker import (
    JobContext,
)

from ._handlers import interruptible
from .conftest import Harness


async def test_a_cancelled_pending_job_never_runs(harness: Harness) -> None:
    worker = harness.worker()
    ran: list[str] = []

    @worker.handler("task")
    async def task(job: JobContext) -> None:
        ran.append(job.id)

    doomed = await harness.enqueue("task", execution_time_ms=time.time_ns() // 1_000_000 + 100)
    await harness.service.cancel(doomed.id)
    await worker.start()
    await asyncio.sleep(0.2)  # past the cancelled job's due time
    other = await harness.enqueue("task")
    await harness.wait_status(other.id, JobStatus.COMPLETED)
    assert ran == [other.id]
    assert (await harness.wait_status(doomed.id)).status is JobStatus.CANCELLED


async def test_cancelling_a_running_job_cancels_its_handler(harness: Harness) -> None:
    worker = harness.worker()
    handler, started, interrupted = interruptible()
    worker.register("long", handler)

    await worker.start()
    job = await harness.enqueue("long")
    await asyncio.wait_for(started.wait(), 2)
    await harness.service.cancel(job.id)
    cancelled = await harness.wait_status(job.id, within_s=3)
    assert cancelled.status is JobStatus.CANCELLED
    assert interrupted.is_set()
    # The store records CANCELLED a moment before the worker hears its settle back.
    await harness.wait_until(lambda: worker.inflight == 0)


async def test_a_thread_handler_sees_cancellation_and_the_job_ends_cancelled(
    harness: Harness,
) -> None:
    worker = harness.worker()
    started = threading.Event()

    @worker.handler("long")
    def long(job: JobContext) -> None:
        started.set()
        job.wait_cancelled(10)
        job.raise_if_cancelled()

    await worker.start()
    job = await harness.enqueue("long")
    assert await asyncio.to_thread(started.wait, 2)
    await harness.service.cancel(job.id)
    cancelled = await harness.wait_status(job.id, within_s=3)
    assert cancelled.status is JobStatus.CANCELLED
