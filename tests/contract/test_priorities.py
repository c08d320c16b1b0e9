"""Priorities on every store: among due jobs of one type the highest priority is claimed
first, FIFO (by due time) within one priority; a scheduled job takes its priority when
it falls due; fairness across types is unchanged; every other operation sees all levels.
"""

from __future__ import annotations

from dataclasses import replace

from jobqueue.domain import (
    Job,
    JobQuery,
    JobStatus,
    JobStore,
    Outcome,
    OutcomeKind,
    TypeGates,
)
from tests.contract.conftest import MakeJob, Passage

LEASE = 30_000


def job_of(make_job: MakeJob, priority: int, job_type: str = "email", delay_ms: int = 0) -> Job:
    return replace(make_job(job_type, delay_ms=delay_ms), priority=priority)


async def claim_ids(store: JobStore, limit: int, job_type: str = "email") -> list[str]:
    return [lease.job.id for lease in await store.claim([job_type], limit=limit, lease_ms=LEASE)]


async def test_higher_priorities_go_first_fifo_within_one(
    store: JobStore, make_job: MakeJob
) -> None:
    # Due times increase with the index: within a priority, earlier due goes first.
    plan = [0, -5, 10, 0, 10, -5, 3, 100, -100]
    jobs = [job_of(make_job, p, delay_ms=-100 + i) for i, p in enumerate(plan)]
    await store.add(jobs)
    expected = [j.id for j in sorted(jobs, key=lambda j: (-j.priority, j.execution_time_ms))]
    assert await claim_ids(store, 4) == expected[:4]
    assert await claim_ids(store, 1) == expected[4:5]
    assert await claim_ids(store, 10) == expected[5:]


async def test_the_priority_round_trips(store: JobStore, make_job: MakeJob) -> None:
    job = job_of(make_job, -42)
    (stored,) = await store.add([job])
    assert stored.priority == -42
    got = await store.get(job.id)
    assert got is not None
    assert got.priority == -42
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    assert lease.job.priority == -42


async def test_a_scheduled_job_takes_its_priority_when_it_falls_due(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    later_ms = passage.guard_ms + 200
    urgent = job_of(make_job, 50, delay_ms=later_ms)
    plain = [job_of(make_job, 0, delay_ms=-10 + i) for i in range(3)]
    await store.add([urgent, *plain])
    # Not due yet: the plain jobs are all there is.
    assert await claim_ids(store, 1) == [plain[0].id]
    await passage.advance(later_ms + 1)
    assert await claim_ids(store, 2) == [urgent.id, plain[1].id]


async def test_a_retried_job_keeps_its_priority(store: JobStore, make_job: MakeJob) -> None:
    high = job_of(make_job, 9, delay_ms=-1)
    low = [job_of(make_job, 0, delay_ms=-20 + i) for i in range(3)]
    await store.add([high, *low])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    assert lease.job.id == high.id
    retry = Outcome(job_id=high.id, token=lease.token, kind=OutcomeKind.RETRY)
    assert await store.settle([retry]) == [True]
    assert await claim_ids(store, 2) == [high.id, low[0].id]


async def test_a_cancelled_prioritized_job_is_never_claimed(
    store: JobStore, make_job: MakeJob
) -> None:
    high, other = job_of(make_job, 20), job_of(make_job, 0)
    await store.add([high, other])
    await store.cancel(high.id)
    rows = {row.type: row for row in (await store.stats()).types}
    assert (rows["email"].pending, rows["email"].cancelled) == (1, 1)
    assert await claim_ids(store, 5) == [other.id]


async def test_stats_count_every_priority(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    await store.add(
        [
            job_of(make_job, 1),
            job_of(make_job, 0),
            job_of(make_job, -1),
            job_of(make_job, 7, delay_ms=passage.guard_ms + 60_000),
            job_of(make_job, 0, delay_ms=passage.guard_ms + 60_000),
        ]
    )
    row = (await store.stats()).types[0]
    assert (row.type, row.pending, row.scheduled) == ("email", 3, 2)


async def test_a_listing_pages_through_every_priority_in_due_order(
    store: JobStore, make_job: MakeJob
) -> None:
    jobs = [job_of(make_job, (i % 3) - 1, delay_ms=-100 + i) for i in range(10)]
    await store.add(jobs)
    seen: list[Job] = []
    cursor = ""
    for _ in range(10):
        page = await store.list_jobs(JobQuery(type="email", limit=3, cursor=cursor))
        seen += page.jobs
        cursor = page.next_cursor
        if not cursor:
            break
    assert [job.id for job in seen] == [job.id for job in jobs]
    assert all(job.status is JobStatus.PENDING for job in seen)
    assert [job.priority for job in seen] == [job.priority for job in jobs]


async def test_fairness_across_types_ignores_priorities(store: JobStore, make_job: MakeJob) -> None:
    await store.add([job_of(make_job, 100, "flood") for _ in range(20)])
    await store.add([job_of(make_job, -100, "rare") for _ in range(2)])
    leases = await store.claim(["flood", "rare"], limit=4, lease_ms=LEASE)
    assert sorted(lease.job.type for lease in leases) == ["flood", "flood", "rare", "rare"]


async def test_resume_hands_out_a_paused_backlog_by_priority(
    store: JobStore, make_job: MakeJob
) -> None:
    assert isinstance(store, TypeGates)
    await store.pause_type("email")
    jobs = [job_of(make_job, p, delay_ms=-10 + i) for i, p in enumerate([0, 5, -5, 5])]
    await store.add(jobs)
    assert await claim_ids(store, 4) == []
    await store.resume_type("email")
    assert await claim_ids(store, 4) == [jobs[1].id, jobs[3].id, jobs[0].id, jobs[2].id]


async def test_an_expired_lease_goes_back_at_its_priority(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    high = job_of(make_job, 3, delay_ms=-1)
    await store.add([high])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=50)
    assert lease.job.id == high.id
    await store.add([job_of(make_job, 0, delay_ms=-50)])
    await passage.advance(51)
    assert await store.requeue_expired() == 1
    assert (await claim_ids(store, 1)) == [high.id]
