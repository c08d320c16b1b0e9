"""The Worker's behaviour, run against every backend of the ``harness`` fixture: results,
scheduling, the types it claims, middleware and batching. Failures, cancellation and a
failing source have modules of their own (test_worker_failures, _cancellation, _resilience)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from jobqueue.domain import JobStatus
from jobqueue.worker import (
    CallNext,
    JobContext,
)

from ._fake_sources import CountingSource
from ._handlers import return_ok
from .conftest import Harness


async def test_a_job_completes_with_the_handlers_result(harness: Harness) -> None:
    worker = harness.worker()

    @worker.handler("greet")
    async def greet(job: JobContext) -> dict[str, Any]:
        return {"hello": job.json()["name"], "attempt": job.attempt}

    await worker.start()
    job = await harness.enqueue("greet", b'{"name": "Ada"}')
    done = await harness.wait_status(job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.result == b'{"hello":"Ada","attempt":1}'
    assert done.attempts == 1


async def test_bytes_and_str_results_are_stored_as_they_are(harness: Harness) -> None:
    worker = harness.worker()
    worker.register("raw", lambda job: job.payload[::-1])

    @worker.handler("text")
    async def text(job: JobContext) -> str:
        return "héllo"

    await worker.start()
    raw = await harness.enqueue("raw", b"\x00\x01\x02")
    txt = await harness.enqueue("text")
    assert (await harness.wait_status(raw.id)).result == b"\x02\x01\x00"
    assert (await harness.wait_status(txt.id)).result == "héllo".encode()


async def test_a_scheduled_job_does_not_start_early(harness: Harness) -> None:
    worker = harness.worker()
    started_at: list[int] = []

    @worker.handler("later")
    async def later(job: JobContext) -> None:
        started_at.append(time.time_ns() // 1_000_000)

    due = time.time_ns() // 1_000_000 + 300
    job = await harness.enqueue("later", execution_time_ms=due)
    await worker.start()
    await asyncio.sleep(0.2)
    if time.time_ns() // 1_000_000 < due:  # a loaded machine may already be past it
        assert started_at == []
    await harness.wait_status(job.id, JobStatus.COMPLETED)
    (start,) = started_at
    assert start >= due


async def test_an_idle_worker_starts_a_job_scheduled_later_when_it_is_due(
    harness: Harness,
) -> None:
    worker = harness.worker(claim_wait_ms=1_000)
    started_at: list[int] = []

    @worker.handler("later")
    async def later(job: JobContext) -> None:
        started_at.append(time.time_ns() // 1_000_000)

    await worker.start()
    await asyncio.sleep(0.05)  # the worker is idle, blocked in its claim
    due = time.time_ns() // 1_000_000 + 300
    job = await harness.enqueue("later", execution_time_ms=due)
    await harness.wait_status(job.id, JobStatus.COMPLETED)
    (start,) = started_at
    assert due <= start < due + 100


async def test_an_idle_worker_starts_a_new_job_within_milliseconds(harness: Harness) -> None:
    worker = harness.worker(claim_wait_ms=1_000)
    started = asyncio.Event()
    latencies: list[float] = []
    enqueued_at = 0.0

    @worker.handler("ping")
    async def ping(job: JobContext) -> None:
        latencies.append(time.perf_counter() - enqueued_at)
        started.set()

    await worker.start()
    for _ in range(5):
        await asyncio.sleep(0.05)
        started.clear()
        enqueued_at = time.perf_counter()
        await harness.enqueue("ping")
        await asyncio.wait_for(started.wait(), 2)
    assert sorted(latencies)[2] < 0.02


async def test_a_thread_handler_runs_off_the_event_loop(harness: Harness) -> None:
    worker = harness.worker()
    loop_thread = threading.get_ident()

    @worker.handler("sync")
    def sync(job: JobContext) -> dict[str, bool]:
        time.sleep(0.01)  # blocking is fine here: this is a worker thread
        return {"off_loop": threading.get_ident() != loop_thread}

    await worker.start()
    jobs = [await harness.enqueue("sync") for _ in range(5)]
    for job in jobs:
        done = await harness.wait_status(job.id)
        assert done.status is JobStatus.COMPLETED
        assert json.loads(done.result or b"") == {"off_loop": True}


async def test_a_worker_claims_only_the_types_it_handles(harness: Harness) -> None:
    worker = harness.worker()
    worker.register("mine", return_ok)
    await worker.start()
    foreign = await harness.enqueue("theirs")
    mine = await harness.enqueue("mine")
    await harness.wait_status(mine.id, JobStatus.COMPLETED)
    await asyncio.sleep(0.05)
    job = await harness.store.get(foreign.id)
    assert job is not None
    assert job.status is JobStatus.PENDING
    assert job.attempts == 0
    assert worker.types == ("mine",)


async def test_middleware_wraps_every_job_and_sees_results_and_errors(harness: Harness) -> None:
    worker = harness.worker()
    events: list[tuple[str, str]] = []

    async def record(job: JobContext, call_next: CallNext) -> Any:
        events.append(("outer-before", job.type))
        try:
            return await call_next()
        except Exception as error:
            events.append(("outer-error", type(error).__name__))
            raise
        finally:
            events.append(("outer-after", job.type))

    async def rewrite(job: JobContext, call_next: CallNext) -> Any:
        events.append(("inner-before", job.type))
        value = await call_next()
        return {"wrapped": value}

    worker.add_middleware(record)
    worker.add_middleware(rewrite)

    @worker.handler("ok")
    async def ok(job: JobContext) -> int:
        return 7

    @worker.handler("bad", max_attempts=1)
    async def bad(job: JobContext) -> None:
        raise KeyError("missing")

    await worker.start()
    good = await harness.enqueue("ok")
    assert (await harness.wait_status(good.id)).result == b'{"wrapped":7}'
    assert events == [("outer-before", "ok"), ("inner-before", "ok"), ("outer-after", "ok")]
    events.clear()
    failing = await harness.enqueue("bad")
    assert (await harness.wait_status(failing.id)).status is JobStatus.FAILED
    assert events == [
        ("outer-before", "bad"),
        ("inner-before", "bad"),
        ("outer-error", "KeyError"),
        ("outer-after", "bad"),
    ]


async def test_outcomes_and_claims_are_batched(harness: Harness) -> None:
    source = CountingSource(harness.make_source())
    worker = harness.worker(source, concurrency=50)
    worker.register("noop", return_ok)
    jobs = await harness.service.enqueue_many([_request("noop") for _ in range(500)])
    await worker.start()
    for job in jobs:
        assert (await harness.wait_status(job.id)).status is JobStatus.COMPLETED
    assert source.settled == 500
    assert source.settle_calls <= 500 / 5
    assert source.claim_calls <= 500 / 5


async def test_several_workers_run_every_job_exactly_once(harness: Harness) -> None:
    runs: dict[str, int] = {}

    async def count(job: JobContext) -> None:
        runs[job.id] = runs.get(job.id, 0) + 1
        await asyncio.sleep(0)

    workers = [harness.worker(concurrency=10) for _ in range(3)]
    for worker in workers:
        worker.register("count", count)
        await worker.start()
    jobs = await harness.service.enqueue_many([_request("count") for _ in range(300)])
    for job in jobs:
        assert (await harness.wait_status(job.id)).status is JobStatus.COMPLETED
    assert runs == dict.fromkeys((job.id for job in jobs), 1)


def _request(job_type: str) -> Any:
    from jobqueue.domain import EnqueueRequest

    return EnqueueRequest(type=job_type, payload=b"x" * 100)
