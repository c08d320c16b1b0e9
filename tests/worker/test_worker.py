"""The Worker's behaviour, run against every backend of the ``harness`` fixture."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from jobqueue.domain import JobStatus, Lease, LeaseState, Outcome, RetryPolicy
from jobqueue.worker import (
    CallNext,
    JobContext,
    JobSource,
    PermanentError,
    SourceUnavailable,
)

from .conftest import ForwardingSource, Harness


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
    started = asyncio.Event()
    interrupted = asyncio.Event()

    @worker.handler("long")
    async def long(job: JobContext) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set()
            raise

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
    second.register("stuck", _return_ok)
    await second.start()
    assert (await harness.wait_status(long.id)).status is JobStatus.COMPLETED


async def _return_ok(job: JobContext) -> str:
    return "ok"


async def test_a_worker_claims_only_the_types_it_handles(harness: Harness) -> None:
    worker = harness.worker()
    worker.register("mine", _return_ok)
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


async def test_a_lost_lease_abandons_the_handler_and_sends_no_outcome(harness: Harness) -> None:
    source = ShortenedRenewal(harness.make_source())
    # Heartbeats every 300 ms: each shortened lease lapses 200 ms before the next.
    worker = harness.worker(source, concurrency=1, requeue_interval_ms=0, lease_ms=900)
    started = asyncio.Event()
    abandoned = asyncio.Event()

    @worker.handler("slow")
    async def slow(job: JobContext) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            abandoned.set()
            raise
        return "stale"

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
    worker.register("noop", _return_ok)
    jobs = await harness.service.enqueue_many([_request("noop") for _ in range(500)])
    await worker.start()
    for job in jobs:
        assert (await harness.wait_status(job.id)).status is JobStatus.COMPLETED
    assert source.settled == 500
    assert source.settle_calls <= 500 / 5
    assert source.claim_calls <= 500 / 5


async def test_the_worker_rides_out_an_unreachable_source(harness: Harness) -> None:
    source = FlakySource(harness.make_source(), failures=3)
    worker = harness.worker(source)
    worker.register("noop", _return_ok)
    await worker.start()
    jobs = [await harness.enqueue("noop") for _ in range(10)]
    for job in jobs:
        assert (await harness.wait_status(job.id)).status is JobStatus.COMPLETED
    assert source.failed_claims == 3
    assert source.failed_settles == 3


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


class PartitionedHeartbeats(ForwardingSource):
    """Heartbeats that fail while ``partitioned``, like a network cut for renewals only."""

    partitioned = False
    renewed = 0

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        if self.partitioned:
            raise SourceUnavailable("partitioned")
        states = await super().renew(leases, lease_ms=lease_ms)
        self.renewed += 1
        return states


class ShortenedRenewal(ForwardingSource):
    """Renews for 100 ms (the server's least) while ``shorten``: leases lapse behind the worker."""

    def __init__(self, inner: JobSource) -> None:
        super().__init__(inner)
        self.shorten = False
        self.lost = False
        self.settled: list[Outcome] = []

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        if self.shorten:
            lease_ms = 100
        states = await super().renew(leases, lease_ms=lease_ms)
        self.lost = self.lost or LeaseState.LOST in states
        return states

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        self.settled.extend(outcomes)
        return await super().settle(outcomes)


class CountingSource(ForwardingSource):
    """Counts round trips, to show that many jobs share one call."""

    def __init__(self, inner: JobSource) -> None:
        super().__init__(inner)
        self.claim_calls = 0
        self.settle_calls = 0
        self.settled = 0

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        leases = await super().claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)
        if leases:
            self.claim_calls += 1
        return leases

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        self.settle_calls += 1
        self.settled += len(outcomes)
        return await super().settle(outcomes)


class FlakySource(ForwardingSource):
    """Fails the first ``failures`` claims and settles, as a backend that is restarting."""

    def __init__(self, inner: JobSource, *, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures
        self.failed_claims = 0
        self.failed_settles = 0

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        if self.failed_claims < self.failures:
            self.failed_claims += 1
            raise SourceUnavailable("connection refused")
        return await super().claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if self.failed_settles < self.failures:
            self.failed_settles += 1
            raise SourceUnavailable("connection refused")
        return await super().settle(outcomes)


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
