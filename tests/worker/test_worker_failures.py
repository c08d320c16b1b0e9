"""A handler that fails: retries with backoff, max attempts, permanent errors and timeouts,
against every backend of the ``harness`` fixture."""

from __future__ import annotations

import asyncio
import threading
import time

from jobqueue.domain import JobStatus, RetryPolicy
from jobqueue.worker import (
    JobContext,
    PermanentError,
)

from .conftest import Harness


async def test_a_failing_handler_is_retried_with_backoff_then_fails(harness: Harness) -> None:
    worker = harness.worker()
    calls: list[float] = []

    @worker.handler("boom", max_attempts=3, retry=RetryPolicy(base_ms=40, jitter=False))
    async def boom(job: JobContext) -> None:
        calls.append(time.monotonic())
        raise ValueError(f"boom on attempt {job.attempt}")

    await worker.start()
    job = await harness.enqueue("boom")
    failed = await harness.wait_status(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.attempts == 3
    assert len(calls) == 3
    # Backoff ceilings 40 ms then 80 ms (no jitter).
    assert calls[1] - calls[0] >= 0.035
    assert calls[2] - calls[1] >= 0.075
    assert failed.last_error is not None
    # The type and message only: the traceback (with the machine's paths) goes to the log.
    assert failed.last_error == "ValueError: boom on attempt 3"


async def test_the_jobs_own_max_attempts_wins_over_the_handlers(harness: Harness) -> None:
    worker = harness.worker()
    seen: list[tuple[int, int]] = []

    @worker.handler("boom", max_attempts=5)
    async def boom(job: JobContext) -> None:
        seen.append((job.attempt, job.max_attempts))
        raise RuntimeError("no")

    await worker.start()
    job = await harness.enqueue("boom", max_attempts=2)
    failed = await harness.wait_status(job.id)
    assert failed.status is JobStatus.FAILED
    assert seen == [(1, 2), (2, 2)]


async def test_a_permanent_error_fails_the_job_at_once(harness: Harness) -> None:
    worker = harness.worker()

    @worker.handler("refuse", max_attempts=5)
    async def refuse(job: JobContext) -> None:
        raise PermanentError("the address does not exist")

    await worker.start()
    job = await harness.enqueue("refuse")
    failed = await harness.wait_status(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.attempts == 1
    assert failed.last_error is not None
    assert failed.last_error.startswith("PermanentError: the address does not exist")


async def test_a_handler_over_its_timeout_is_cancelled_and_fails(harness: Harness) -> None:
    worker = harness.worker()
    cancelled = asyncio.Event()

    @worker.handler("hang", timeout_s=0.05, max_attempts=1)
    async def hang(job: JobContext) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    await worker.start()
    job = await harness.enqueue("hang")
    failed = await harness.wait_status(job.id)
    assert failed.status is JobStatus.FAILED
    assert cancelled.is_set()
    assert failed.last_error is not None
    assert failed.last_error.startswith("HandlerTimeout: handler 'hang' ran longer than")


async def test_a_thread_handler_over_its_timeout_fails_and_sees_the_flag(harness: Harness) -> None:
    worker = harness.worker()
    saw_flag = threading.Event()

    @worker.handler("block", timeout_s=0.05, max_attempts=1)
    def block(job: JobContext) -> None:
        if job.wait_cancelled(5):
            saw_flag.set()

    await worker.start()
    job = await harness.enqueue("block")
    failed = await harness.wait_status(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.last_error is not None
    assert "HandlerTimeout" in failed.last_error
    assert await asyncio.to_thread(saw_flag.wait, 2)
