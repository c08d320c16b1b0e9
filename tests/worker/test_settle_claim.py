"""A busy worker's settles also claim (SettleClaimSource): fewer calls, never more jobs than slots.

Each test drives a real worker on every path (memory, the server, Redis)
through a source that forwards to the harness's real one and records what
the worker asked for: how many calls of each kind, and how many handlers ran
at once (a ledger of the runs, not a reading of the code).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

from jobqueue.domain import JobStatus, Lease, Outcome
from jobqueue.worker import JobContext, JobSource, SettleClaimSource

from .conftest import ForwardingSource, Harness

CONCURRENCY = 6
"""Below the test server's claim cap (7 jobs of up to 1 MiB fit its 8 MiB messages).

A claim the server caps leaves slots free, which the claim loop then fills.
"""
JOBS = 200


class Recorded(ForwardingSource):
    """Forwards every call, the settle that claims too, and counts them."""

    def __init__(self, inner: JobSource) -> None:
        super().__init__(inner)
        assert isinstance(inner, SettleClaimSource)
        self.both: SettleClaimSource = inner
        self.calls: Counter[str] = Counter()
        self.batches: list[int] = []
        self.leased_beside = 0
        self.hold: asyncio.Event | None = None
        self.held = asyncio.Event()
        self.held_leases: list[str] = []

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        self.calls["claim"] += 1
        return await super().claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        self.calls["settle"] += 1
        self.batches.append(len(outcomes))
        return await super().settle(outcomes)

    async def settle_then_claim(
        self, outcomes: Sequence[Outcome], types: Sequence[str], *, limit: int, lease_ms: int
    ) -> tuple[list[bool], list[Lease]]:
        self.calls["settle_then_claim"] += 1
        self.batches.append(len(outcomes))
        accepted, leases = await self.both.settle_then_claim(
            outcomes, types, limit=limit, lease_ms=lease_ms
        )
        self.leased_beside += len(leases)
        if self.hold is not None and leases and not self.held.is_set():
            self.held_leases = [lease.job.id for lease in leases]
            self.held.set()
            await self.hold.wait()
        return accepted, leases


async def test_a_busy_drain_claims_in_its_settles_within_its_slots(harness: Harness) -> None:
    source = Recorded(harness.make_source())
    worker = harness.worker(source, concurrency=CONCURRENCY)
    running = most = 0
    runs: Counter[str] = Counter()

    @worker.handler("work")
    async def work(job: JobContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        runs[job.id] += 1
        # Uneven runs: batches free a few slots at a time, beside claims out.
        await asyncio.sleep((1 + int(job.id[-2:], 16) % 7) / 1000)
        running -= 1

    jobs = [await harness.enqueue("work") for _ in range(JOBS)]
    await worker.start()
    for job in jobs:
        await harness.wait_status(job.id, JobStatus.COMPLETED, within_s=30)
    await worker.stop()
    assert runs == Counter({job.id: 1 for job in jobs})  # each exactly once
    assert most <= CONCURRENCY
    # Most jobs came with a settle, so there were far fewer claims than jobs.
    assert source.leased_beside > JOBS // 2, source.calls
    assert source.calls["claim"] < source.calls["settle_then_claim"], source.calls


async def test_jobs_a_settle_leases_while_the_worker_stops_are_given_back(
    harness: Harness,
) -> None:
    source = Recorded(harness.make_source())
    source.hold = asyncio.Event()
    worker = harness.worker(source, concurrency=2)
    ran: list[str] = []

    @worker.handler("work")
    async def work(job: JobContext) -> None:
        ran.append(job.id)

    jobs = [await harness.enqueue("work") for _ in range(20)]
    await worker.start()
    async with asyncio.timeout(10):
        await source.held.wait()  # a settle has leased jobs and not yet answered
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)  # stop() marks the worker as stopping before its first wait
    source.hold.set()
    await stopping
    states = [await harness.store.get(job.id) for job in jobs]
    assert all(job is not None for job in states)
    done = {job.id for job in states if job is not None and job.status is JobStatus.COMPLETED}
    assert done == set(ran)  # every run was stored, nothing else completed
    assert source.held_leases
    assert not set(source.held_leases) & set(ran)  # leased after the stop began: never run
    for job in states:
        assert job is not None
        if job.id not in done:
            # Handed back untried: due again, its attempt given back.
            assert (job.status, job.attempts) == (JobStatus.PENDING, 0), job


async def test_each_lane_settles_at_most_its_share_of_the_slots(harness: Harness) -> None:
    """Two lanes of half the slots each: one lane taking every outcome would stall the other.

    With handlers that return at once, the outcomes of a whole claim arrive
    together; a lane that took them all would leave the other lane nothing,
    and the worker and the store would take turns (docs/benchmarks.md).
    """
    source = Recorded(harness.make_source())
    worker = harness.worker(source, concurrency=CONCURRENCY)

    @worker.handler("work")
    async def work(job: JobContext) -> None:
        pass

    jobs = [await harness.enqueue("work") for _ in range(JOBS)]
    await worker.start()
    for job in jobs:
        await harness.wait_status(job.id, JobStatus.COMPLETED, within_s=30)
    await worker.stop()
    assert sum(source.batches) == JOBS
    assert max(source.batches) == CONCURRENCY // 2, source.batches
