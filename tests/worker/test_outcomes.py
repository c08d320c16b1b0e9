"""Outcomes judged one by one, and one run of a job at a time (issue 11)."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time

import pytest

from jobqueue.domain import JobStatus, Limits, RetryPolicy
from jobqueue.memory import MemoryJobStore
from jobqueue.worker import JobContext, StoreSource

from .conftest import Harness

TWO_MB = 2_000_000


def peak_concurrency(runs: list[tuple[float, float]]) -> int:
    """The most runs that overlapped at one instant; a run ending as another starts does not."""
    events = sorted([(start, 1) for start, _ in runs] + [(end, -1) for _, end in runs])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def test_peak_concurrency_counts_overlaps_only() -> None:
    assert peak_concurrency([(0, 1), (1, 2), (2, 3)]) == 1
    assert peak_concurrency([(0, 2), (1, 3), (1.5, 4)]) == 3


async def test_a_thread_handler_past_its_timeout_keeps_its_job_until_the_thread_returns(
    harness: Harness,
) -> None:
    # The case: every run outlives its timeout three times over.
    worker = harness.worker(concurrency=5)
    ledger: list[tuple[float, float]] = []
    lock = threading.Lock()

    @worker.handler(
        "stuck", timeout_s=0.5, max_attempts=3, retry=RetryPolicy(base_ms=50, jitter=False)
    )
    def stuck(job: JobContext) -> str:
        start = time.monotonic()
        time.sleep(1.5)
        with lock:
            ledger.append((start, time.monotonic()))
        return "finished, too late"

    await worker.start()
    job = await harness.enqueue("stuck")
    failed = await harness.wait_status(job.id, within_s=15)
    await harness.wait_until(lambda: len(ledger) >= 3, within_s=5)
    assert failed.status is JobStatus.FAILED
    assert failed.attempts == 3
    assert failed.last_error is not None
    assert failed.last_error.startswith("HandlerTimeout: handler 'stuck' ran longer than")
    assert len(ledger) == 3
    assert peak_concurrency(ledger) == 1


async def test_a_result_that_cannot_be_encoded_fails_the_job_at_once(harness: Harness) -> None:
    worker = harness.worker()
    runs: list[int] = []

    @worker.handler("when", max_attempts=5)
    async def when(job: JobContext) -> dict[str, object]:
        runs.append(job.attempt)
        return {"at": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)}

    await worker.start()
    job = await harness.enqueue("when")
    failed = await harness.wait_status(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.attempts == 1
    assert runs == [1]
    assert failed.last_error is not None
    assert failed.last_error.startswith("TypeError: the handler's result cannot be stored")
    assert "datetime" in failed.last_error


async def test_a_result_over_the_limit_fails_that_job_alone(harness: Harness) -> None:
    worker = harness.worker(concurrency=30)
    gate = asyncio.Event()

    @worker.handler("big")
    async def big(job: JobContext) -> bytes:
        await gate.wait()
        return b"x" * TWO_MB

    @worker.handler("small")
    async def small(job: JobContext) -> str:
        await gate.wait()
        return "ok"

    await worker.start()
    large = await harness.enqueue("big")
    smalls = [await harness.enqueue("small") for _ in range(20)]
    await harness.wait_until(lambda: worker.inflight == 21)
    gate.set()  # all finish together, so their outcomes share settle batches
    failed = await harness.wait_status(large.id)
    assert failed.status is JobStatus.FAILED
    assert failed.attempts == 1
    assert failed.last_error == (
        f"result too large: {TWO_MB} bytes > limit of {Limits().max_result_bytes}"
    )
    for job in smalls:
        done = await harness.wait_status(job.id)
        assert (done.status, done.attempts, done.result) == (JobStatus.COMPLETED, 1, b"ok")


@pytest.mark.parametrize("worker_limit", [None, 100])
async def test_the_direct_path_judges_results_by_the_stores_limits(
    worker_limit: int | None,
) -> None:
    # StoreSource goes through the domain's LeaseService, as the server does:
    # its limits hold even when the worker's own setting is more lenient.
    store = MemoryJobStore()
    harness = Harness(
        "memory", store, lambda: StoreSource(store, limits=Limits(max_result_bytes=10))
    )
    try:
        worker = (
            harness.worker()
            if worker_limit is None
            else harness.worker(max_result_bytes=worker_limit)
        )

        @worker.handler("echo")
        async def echo(job: JobContext) -> bytes:
            return job.payload

        await worker.start()
        fits = await harness.enqueue("echo", b"0123456789")
        over = await harness.enqueue("echo", b"0123456789ab")
        assert (await harness.wait_status(fits.id)).status is JobStatus.COMPLETED
        failed = await harness.wait_status(over.id)
        assert failed.status is JobStatus.FAILED
        assert failed.last_error == "result too large: 12 bytes > limit of 10"
    finally:
        await harness.close()


async def test_stopping_fails_a_timed_out_thread_attempt_instead_of_giving_it_back(
    harness: Harness,
) -> None:
    worker = harness.worker()
    release = threading.Event()
    runs: list[bool] = []

    @worker.handler("stuck", timeout_s=0.1, max_attempts=3)
    def stuck(job: JobContext) -> None:
        runs.append(job.wait_cancelled(5))  # True once the timeout flags it
        release.wait(10)

    await worker.start()
    job = await harness.enqueue("stuck")
    await harness.wait_until(lambda: runs == [True])
    await worker.stop(grace_s=0)
    release.set()
    retried = await harness.wait_status(job.id, JobStatus.PENDING)
    # The attempt ran and timed out: it counts, and it is not run again meanwhile.
    assert retried.attempts == 1
    assert retried.last_error is not None
    assert retried.last_error.startswith("HandlerTimeout")
    assert runs == [True]
