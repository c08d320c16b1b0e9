"""Leases the worker keeps: confirmation, renewals of waiting outcomes, fencing, claims at stop.

Each test runs against every backend of the ``harness`` fixture, with fakes
wrapping the real source to cut one kind of call at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from jobqueue.domain import JobStatus, Lease, LeaseState, Outcome
from jobqueue.worker import JobContext, JobSource, SourceUnavailable

from ._handlers import interruptible
from .conftest import ForwardingSource, Harness


class RecordingSource(ForwardingSource):
    """Records what goes through, and cuts renewals or settles on demand."""

    def __init__(self, inner: JobSource) -> None:
        super().__init__(inner)
        self.leases: list[Lease] = []
        self.renewals: list[list[tuple[str, str]]] = []
        self.settled: list[Outcome] = []
        self.renew_cut = False
        self.settle_cut = False

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        leases = await super().claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)
        self.leases.extend(leases)
        return leases

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        if self.renew_cut:
            raise SourceUnavailable("renewals cut")
        self.renewals.append(list(leases))
        return await super().renew(leases, lease_ms=lease_ms)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if self.settle_cut:
            raise SourceUnavailable("settles cut")
        self.settled.extend(outcomes)
        return await super().settle(outcomes)


async def test_a_running_job_is_confirmed_soon_after_its_claim(harness: Harness) -> None:
    # The heartbeat comes every 10 s: only the confirmation can renew this early.
    source = RecordingSource(harness.make_source())
    worker = harness.worker(source, lease_ms=30_000, claim_wait_ms=200)
    release = asyncio.Event()

    @worker.handler("long")
    async def long(job: JobContext) -> None:
        await release.wait()

    await worker.start()
    first = await harness.enqueue("long")
    await harness.wait_until(lambda: len(source.leases) == 1)
    (lease,) = source.leases
    await harness.wait_until(lambda: bool(source.renewals), within_s=3)
    assert source.renewals == [[(first.id, lease.token)]]
    release.set()
    done = await harness.wait_status(first.id)
    assert done.status is JobStatus.COMPLETED
    assert done.attempts == 1


async def test_jobs_that_settle_at_once_need_no_confirmation(harness: Harness) -> None:
    source = RecordingSource(harness.make_source())
    worker = harness.worker(source, lease_ms=30_000, confirm_after_ms=1_000)

    @worker.handler("quick")
    async def quick(job: JobContext) -> str:
        return "ok"

    jobs = [await harness.enqueue("quick") for _ in range(50)]
    await worker.start()
    for job in jobs:
        assert (await harness.wait_status(job.id)).status is JobStatus.COMPLETED
    await asyncio.sleep(1.2)  # past the confirmation delay of the last claim
    assert source.renewals == []
    assert len(source.settled) == 50


async def test_an_outcome_waiting_to_be_settled_keeps_its_lease(harness: Harness) -> None:
    source = RecordingSource(harness.make_source())
    worker = harness.worker(source, concurrency=1, lease_ms=300, requeue_interval_ms=50)
    runs: list[int] = []

    @worker.handler("once")
    async def once(job: JobContext) -> str:
        runs.append(job.attempt)
        return "done"

    await worker.start()
    source.settle_cut = True
    job = await harness.enqueue("once")
    await harness.wait_until(lambda: runs == [1])
    # Three leases long, settles fail while heartbeats get through: the lease
    # must not run out, or the requeue loop hands the job to a second run.
    await asyncio.sleep(0.9)
    source.settle_cut = False
    done = await harness.wait_status(job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.attempts == 1
    assert runs == [1]


async def test_a_worker_that_cannot_renew_stops_the_handler_before_the_lease_runs_out(
    harness: Harness,
) -> None:
    source = RecordingSource(harness.make_source())
    worker = harness.worker(source, concurrency=1, lease_ms=3_000, requeue_interval_ms=0)
    handler, started, stopped = interruptible()
    worker.register("slow", handler)

    await worker.start()
    job = await harness.enqueue("slow")
    await asyncio.wait_for(started.wait(), 2)
    (lease,) = source.leases
    source.renew_cut = True
    await asyncio.wait_for(stopped.wait(), 5)
    # Given up while the store still holds the lease for it (the margin is
    # 500 ms here): the store never saw a second holder while it ran.
    assert await harness.store.renew([(job.id, lease.token)], lease_ms=100) == [LeaseState.ACTIVE]
    await harness.wait_until(lambda: worker.inflight == 0)
    assert source.settled == []  # no outcome is sent for a lease given up


async def test_a_thread_handler_whose_lease_cannot_be_kept_sees_the_flag(
    harness: Harness,
) -> None:
    source = RecordingSource(harness.make_source())
    worker = harness.worker(source, concurrency=1, lease_ms=1_500, requeue_interval_ms=0)
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    flagged: list[bool] = []

    @worker.handler("block")
    def block(job: JobContext) -> str:
        loop.call_soon_threadsafe(started.set)
        flagged.append(job.wait_cancelled(10))
        return "late"

    await worker.start()
    await harness.enqueue("block")
    await asyncio.wait_for(started.wait(), 2)
    source.renew_cut = True
    await harness.wait_until(lambda: bool(flagged), within_s=5)
    assert flagged == [True]
    await harness.wait_until(lambda: worker.inflight == 0)
    assert source.settled == []


async def test_an_outcome_waiting_past_the_local_deadline_is_still_sent(
    harness: Harness,
) -> None:
    # The handler is done, so fencing has nothing to stop: the store alone
    # knows whether the lease held, and applies or refuses the outcome.
    source = RecordingSource(harness.make_source())
    worker = harness.worker(source, concurrency=1, lease_ms=1_500, requeue_interval_ms=0)

    @worker.handler("quick")
    async def quick(job: JobContext) -> str:
        return "done"

    await worker.start()
    source.renew_cut = source.settle_cut = True
    job = await harness.enqueue("quick")
    await harness.wait_until(lambda: len(source.leases) == 1)
    await asyncio.sleep(1.5)  # past the local deadline less its 250 ms margin
    assert worker.inflight == 1  # not given up
    source.settle_cut = False
    await harness.wait_until(lambda: worker.inflight == 0)
    assert [outcome.job_id for outcome in source.settled] == [job.id]


class SlowClaimReplies(ForwardingSource):
    """Claims whose replies arrive ``delay_s`` after the store leased the jobs."""

    def __init__(self, inner: JobSource, *, delay_s: float) -> None:
        super().__init__(inner)
        self.delay_s = delay_s
        self.holding = asyncio.Event()

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        leases = await super().claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)
        if leases:
            self.holding.set()
            await asyncio.sleep(self.delay_s)
        return leases


async def test_stop_waits_for_a_claim_in_flight_and_releases_what_it_took(
    harness: Harness,
) -> None:
    source = SlowClaimReplies(harness.make_source(), delay_s=1.5)
    worker = harness.worker(source, claim_wait_ms=200, lease_ms=30_000)
    ran: list[str] = []

    @worker.handler("task", max_attempts=1)
    async def task(job: JobContext) -> None:
        ran.append(job.id)

    await worker.start()
    job = await harness.enqueue("task")
    await asyncio.wait_for(source.holding.wait(), 2)
    started = time.monotonic()
    await worker.stop(grace_s=0)
    assert time.monotonic() - started >= 1.0  # it waited for the reply
    released = await harness.wait_status(job.id, JobStatus.PENDING, within_s=1)
    assert released.attempts == 0
    assert ran == []


async def test_a_job_reclaimed_beside_its_own_stuck_thread_waits_for_it(
    harness: Harness,
) -> None:
    """One run of a job at a time inside one worker, even after its lease was lost.

    The first run's thread ignores its ``cancelled`` flag; the worker gives up
    its lease (renewals fail), the lease expires, and the same worker claims
    the job again while that thread still runs. The second run must start only
    once the first thread has returned.
    """
    source = RecordingSource(harness.make_source())
    worker = harness.worker(source, concurrency=2, lease_ms=1_500)
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    events: list[tuple[int, str]] = []

    @worker.handler("stubborn")
    def stubborn(job: JobContext) -> str:
        run = sum(1 for _, event in events if event == "start") + 1
        events.append((run, "start"))
        loop.call_soon_threadsafe(started.set)
        if run == 1:
            time.sleep(3.0)  # ignores the flag: Python cannot stop a thread
        events.append((run, "end"))
        return "done"

    await worker.start()
    job = await harness.enqueue("stubborn")
    await asyncio.wait_for(started.wait(), 2)
    source.renew_cut = True
    # Fenced before the deadline: the lease is given up while the thread runs on.
    await harness.wait_until(lambda: any(ctx._lost for ctx in worker._inflight.values()))
    source.renew_cut = False
    # Hand the lapsed lease back as a sweeper would (the server path's test
    # server runs none), so the job is claimed again while the thread runs.
    for _ in range(100):
        await harness.store.requeue_expired()
        if len(events) > 1 or any(
            ctx.id == job.id and not ctx._lost for ctx in worker._inflight.values()
        ):
            break
        await asyncio.sleep(0.05)
    done = await harness.wait_status(job.id, within_s=10)
    assert done.status is JobStatus.COMPLETED
    assert events == [(1, "start"), (1, "end"), (2, "start"), (2, "end")]
