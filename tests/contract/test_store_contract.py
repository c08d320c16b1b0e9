"""The JobStore contract: every adapter must pass every test here.

Times are the store's own (Redis's TIME, or the memory store's clock): a test
reads them through ``passage`` around a call and asserts bounds, which on the
memory store's manual clock are exact. See conftest.py for what a wait on
Redis can and cannot prove.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace

import pytest

from jobqueue.domain import (
    InvalidJob,
    Job,
    JobAlreadyFinished,
    JobNotFound,
    JobQuery,
    JobStatus,
    JobStore,
    LeaseState,
    Outcome,
    OutcomeKind,
)
from tests.contract.conftest import MakeJob, Passage

LEASE = 30_000


def complete(job_id: str, token: str, result: bytes | None = None) -> Outcome:
    return Outcome(job_id=job_id, token=token, kind=OutcomeKind.COMPLETE, result=result)


def ids(jobs: Sequence[Job]) -> list[str]:
    return [job.id for job in jobs]


def assert_stored_as(stored: Job, job: Job, before: int, after: int) -> None:
    """``stored`` is ``job`` as the store keeps it: created, and if due at once also due,
    at the store's now (between ``before`` and ``after``), everything else unchanged."""
    assert before <= stored.created_at <= after
    due_at_once = job.execution_time_ms == job.created_at
    expected = replace(
        job,
        created_at=stored.created_at,
        updated_at=stored.created_at,
        execution_time_ms=stored.created_at if due_at_once else job.execution_time_ms,
    )
    assert stored == expected


# -- add and get ----------------------------------------------------------------


@pytest.mark.parametrize("delay_ms", [0, 5_000])
async def test_added_job_reads_back_as_stored(
    store: JobStore, make_job: MakeJob, passage: Passage, delay_ms: int
) -> None:
    job = make_job("email", b"\x00\xffbinary", delay_ms=delay_ms, max_attempts=3)
    before = await passage.now_ms()
    (added,) = await store.add([job])
    after = await passage.now_ms()
    assert_stored_as(added, job, before, after)
    assert await store.get(job.id) == added


async def test_unknown_id_reads_as_none(store: JobStore, make_job: MakeJob) -> None:
    assert await store.get(make_job().id) is None


async def test_empty_payload_and_defaults_round_trip(store: JobStore, make_job: MakeJob) -> None:
    job = make_job("t", b"")
    await store.add([job])
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.payload == b""
    assert stored.max_attempts is None
    assert stored.result is None
    assert stored.last_error is None
    assert stored.attempts == 0


async def test_idempotency_key_returns_the_first_job(store: JobStore, make_job: MakeJob) -> None:
    first = make_job(idempotency_key="order-42")
    again = make_job(payload=b"other", idempotency_key="order-42")
    (stored,) = await store.add([first])
    assert stored.id == first.id
    assert await store.add([again]) == [stored]
    assert await store.get(again.id) is None
    page = await store.list_jobs(JobQuery())
    assert [job.id for job in page.jobs] == [first.id]


async def test_idempotency_key_repeated_within_one_batch(
    store: JobStore, make_job: MakeJob
) -> None:
    a, b, c = make_job(idempotency_key="k"), make_job(idempotency_key="k"), make_job()
    assert ids(await store.add([a, b, c])) == [a.id, a.id, c.id]


async def test_a_batch_key_returns_the_first_batch_as_it_is_now(
    store: JobStore, make_job: MakeJob
) -> None:
    first = [make_job(), make_job(job_type="sms")]
    assert ids(await store.add(first, batch_key="import-7")) == ids(first)
    await store.claim(["email"], limit=1, lease_ms=LEASE)
    retry = [make_job(), make_job(job_type="sms"), make_job()]
    again = await store.add(retry, batch_key="import-7")
    assert ids(again) == ids(first)
    assert again[0].status is JobStatus.RUNNING
    assert all([await store.get(job.id) is None for job in retry])
    assert (await store.stats()).total.pending == 1


async def test_batch_keys_name_batches_not_jobs(store: JobStore, make_job: MakeJob) -> None:
    keyed = make_job(idempotency_key="shared")
    assert ids(await store.add([keyed], batch_key="shared")) == [keyed.id]
    other = make_job()
    assert ids(await store.add([other], batch_key="other")) == [other.id]
    inner, plain = make_job(idempotency_key="shared"), make_job()
    assert ids(await store.add([inner, plain], batch_key="third")) == [keyed.id, plain.id]
    assert (await store.add([make_job(idempotency_key="shared")]))[0].id == keyed.id


# -- claim ----------------------------------------------------------------------


async def test_claim_takes_due_jobs_in_due_order(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    future_ms = passage.guard_ms + 100
    late, early = make_job(delay_ms=-10), make_job(delay_ms=-20)
    future = make_job(delay_ms=future_ms)
    await store.add([late, early, future])
    before = await passage.now_ms()
    leases = await store.claim(["email"], limit=10, lease_ms=LEASE)
    after = await passage.now_ms()
    assert [lease.job.id for lease in leases] == [early.id, late.id]
    for lease in leases:
        assert lease.job.status is JobStatus.RUNNING
        assert lease.job.attempts == 1
        assert before + LEASE <= lease.deadline_ms <= after + LEASE
        assert before <= lease.job.updated_at <= after
    assert len({lease.token for lease in leases}) == 2
    await passage.advance(future_ms - passage.guard_ms - 1)
    assert await store.claim(["email"], limit=10, lease_ms=LEASE) == []
    await passage.advance(passage.guard_ms + 1)
    (lease,) = await store.claim(["email"], limit=10, lease_ms=LEASE)
    assert lease.job.id == future.id


async def test_claim_respects_limit_and_types(store: JobStore, make_job: MakeJob) -> None:
    await store.add([make_job("a") for _ in range(5)] + [make_job("b")])
    assert len(await store.claim(["a"], limit=3, lease_ms=LEASE)) == 3
    assert [lease.job.type for lease in await store.claim(["b"], limit=3, lease_ms=LEASE)] == ["b"]
    assert await store.claim(["c"], limit=3, lease_ms=LEASE) == []


async def test_claim_is_fair_across_types(store: JobStore, make_job: MakeJob) -> None:
    await store.add([make_job("flood") for _ in range(50)] + [make_job("rare") for _ in range(2)])
    leases = await store.claim(["flood", "rare"], limit=4, lease_ms=LEASE)
    assert sorted(lease.job.type for lease in leases) == ["flood", "flood", "rare", "rare"]


async def test_claimed_job_is_not_claimed_again(store: JobStore, make_job: MakeJob) -> None:
    await store.add([make_job()])
    assert len(await store.claim(["email"], limit=5, lease_ms=LEASE)) == 1
    assert await store.claim(["email"], limit=5, lease_ms=LEASE) == []


async def test_claim_waits_until_a_job_arrives(store: JobStore, make_job: MakeJob) -> None:
    async def add_later() -> None:
        await asyncio.sleep(0.05)
        await store.add([make_job()])

    started = time.monotonic()
    adder = asyncio.create_task(add_later())
    leases = await store.claim(["email"], limit=1, lease_ms=LEASE, wait_ms=5_000)
    await adder
    assert len(leases) == 1
    assert time.monotonic() - started < 4.0


async def test_claim_without_work_returns_after_its_wait(store: JobStore) -> None:
    started = time.monotonic()
    assert await store.claim(["email"], limit=1, lease_ms=LEASE, wait_ms=100) == []
    assert 0.09 <= time.monotonic() - started < 3.0


# -- settle ---------------------------------------------------------------------


async def test_complete_stores_result(store: JobStore, make_job: MakeJob, passage: Passage) -> None:
    job = make_job()
    await store.add([job])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    await passage.advance(7)
    before = await passage.now_ms()
    assert await store.settle([complete(job.id, lease.token, b"done")]) == [True]
    after = await passage.now_ms()
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.COMPLETED
    assert stored.result == b"done"
    assert before <= stored.updated_at <= after
    assert stored.updated_at >= lease.job.updated_at + 7


async def test_stale_token_is_rejected_and_changes_nothing(
    store: JobStore, make_job: MakeJob
) -> None:
    job = make_job()
    await store.add([job])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    before = await store.get(job.id)
    assert await store.settle([complete(job.id, "not-the-token")]) == [False]
    assert await store.get(job.id) == before
    assert await store.settle([complete(job.id, lease.token)]) == [True]
    assert await store.settle([complete(job.id, lease.token)]) == [False]


async def test_settle_of_unknown_job_is_rejected(store: JobStore, make_job: MakeJob) -> None:
    assert await store.settle([complete(make_job().id, "x")]) == [False]


async def test_a_retry_is_due_its_delay_after_the_stores_now(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    delay = passage.guard_ms + 100
    job = make_job()
    await store.add([job])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    outcome = Outcome(
        job_id=job.id, token=lease.token, kind=OutcomeKind.RETRY, error="boom", retry_delay_ms=delay
    )
    before = await passage.now_ms()
    assert await store.settle([outcome]) == [True]
    after = await passage.now_ms()
    stored = await store.get(job.id)
    assert stored is not None
    assert (stored.status, stored.last_error, stored.attempts) == (JobStatus.PENDING, "boom", 1)
    assert before + delay <= stored.execution_time_ms <= after + delay
    assert await store.claim(["email"], limit=1, lease_ms=LEASE) == []
    await passage.advance(delay - passage.guard_ms - 1)
    assert await store.claim(["email"], limit=1, lease_ms=LEASE) == []
    await passage.advance(passage.guard_ms + 1)
    (again,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    assert again.job.attempts == 2
    assert again.token != lease.token


async def test_fail_ends_the_job(store: JobStore, make_job: MakeJob) -> None:
    job = make_job()
    await store.add([job])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    outcome = Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.FAIL, error="bad input")
    assert await store.settle([outcome]) == [True]
    stored = await store.get(job.id)
    assert stored is not None
    assert (stored.status, stored.last_error) == (JobStatus.FAILED, "bad input")


async def test_release_hands_the_job_back_without_spending_an_attempt(
    store: JobStore, make_job: MakeJob
) -> None:
    job = make_job()
    await store.add([job])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    outcome = Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.RELEASE)
    assert await store.settle([outcome]) == [True]
    (again,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    assert again.job.attempts == 1


async def test_settle_applies_a_mixed_batch(store: JobStore, make_job: MakeJob) -> None:
    jobs = [make_job() for _ in range(3)]
    await store.add(jobs)
    leases = await store.claim(["email"], limit=3, lease_ms=LEASE)
    outcomes = [
        complete(leases[0].job.id, leases[0].token),
        Outcome(job_id=leases[1].job.id, token="stale", kind=OutcomeKind.FAIL, error="x"),
        Outcome(job_id=leases[2].job.id, token=leases[2].token, kind=OutcomeKind.FAIL, error="x"),
    ]
    assert await store.settle(outcomes) == [True, False, True]
    statuses = [(await store.get(lease.job.id)).status for lease in leases]  # type: ignore[union-attr]
    assert statuses == [JobStatus.COMPLETED, JobStatus.RUNNING, JobStatus.FAILED]


# -- cancel ---------------------------------------------------------------------


async def test_cancel_pending_job_is_never_claimed(store: JobStore, make_job: MakeJob) -> None:
    job = make_job()
    await store.add([job])
    cancelled = await store.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert await store.claim(["email"], limit=5, lease_ms=LEASE) == []
    with pytest.raises(JobAlreadyFinished):
        await store.cancel(job.id)


async def test_cancel_unknown_job(store: JobStore, make_job: MakeJob) -> None:
    with pytest.raises(JobNotFound):
        await store.cancel(make_job().id)


async def test_cancel_running_job_asks_its_worker(store: JobStore, make_job: MakeJob) -> None:
    job = make_job()
    await store.add([job])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    flagged = await store.cancel(job.id)
    assert (flagged.status, flagged.cancel_requested) == (JobStatus.RUNNING, True)
    assert await store.renew([(job.id, lease.token)], lease_ms=LEASE) == [
        LeaseState.CANCEL_REQUESTED
    ]
    confirm = Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.CANCELLED)
    assert await store.settle([confirm]) == [True]
    assert (await store.get(job.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", [OutcomeKind.RETRY, OutcomeKind.RELEASE])
async def test_requested_cancel_wins_over_a_requeue(
    store: JobStore, make_job: MakeJob, kind: OutcomeKind
) -> None:
    job = make_job()
    await store.add([job])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    await store.cancel(job.id)
    assert await store.settle([Outcome(job_id=job.id, token=lease.token, kind=kind)]) == [True]
    assert (await store.get(job.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]


async def test_requested_cancel_wins_over_lease_expiry(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    job = make_job()
    await store.add([job])
    await store.claim(["email"], limit=1, lease_ms=50)
    await store.cancel(job.id)  # flags a RUNNING job, whether or not its deadline passed
    await passage.advance(50)
    assert await store.requeue_expired() == 1
    assert (await store.get(job.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]


async def test_cancel_racing_claims_never_both_win(store: JobStore, make_job: MakeJob) -> None:
    jobs = [make_job() for _ in range(40)]
    await store.add(jobs)

    async def cancel(job_id: str) -> bool:
        try:
            return (await store.cancel(job_id)).status is JobStatus.CANCELLED
        except JobAlreadyFinished:
            return False

    cancels = asyncio.gather(*(cancel(job.id) for job in jobs))
    claims = asyncio.gather(*(store.claim(["email"], limit=3, lease_ms=LEASE) for _ in range(10)))
    won, leases = await asyncio.gather(cancels, claims)
    cancelled = {job.id for job, ok in zip(jobs, won, strict=True) if ok}
    claimed = {lease.job.id for batch in leases for lease in batch}
    assert not cancelled & claimed
    for job in jobs:
        stored = await store.get(job.id)
        assert stored is not None
        expected = JobStatus.CANCELLED if job.id in cancelled else JobStatus.RUNNING
        assert stored.status is expected
        assert stored.cancel_requested == (job.id in claimed and stored.cancel_requested)
    assert cancelled | claimed == {job.id for job in jobs}


# -- list and stats -------------------------------------------------------------


async def test_list_pages_through_every_match_once(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    jobs = [make_job(job_type, delay_ms=i) for i in range(7) for job_type in ("b", "a")]
    await store.add(jobs)
    leases = await store.claim(["a"], limit=2, lease_ms=LEASE)
    await store.settle([complete(leases[0].job.id, leases[0].token)])
    await passage.advance(1)
    seen: list[str] = []
    cursor = ""
    for _ in range(20):
        page = await store.list_jobs(JobQuery(limit=3, cursor=cursor))
        assert len(page.jobs) <= 3
        seen += [job.id for job in page.jobs]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(job.id for job in jobs)
    assert len(seen) == len(jobs)
    statuses = [(await store.get(job_id)).status for job_id in seen]  # type: ignore[union-attr]
    assert statuses == sorted(statuses)


async def test_list_filters_by_type_and_status(store: JobStore, make_job: MakeJob) -> None:
    a1, a2, b1 = make_job("a", delay_ms=-2), make_job("a", delay_ms=-1), make_job("b")
    await store.add([a1, a2, b1])
    await store.claim(["a"], limit=1, lease_ms=LEASE)
    pending_a = await store.list_jobs(JobQuery(type="a", status=JobStatus.PENDING))
    assert [job.id for job in pending_a.jobs] == [a2.id]
    running = await store.list_jobs(JobQuery(status=JobStatus.RUNNING))
    assert [job.id for job in running.jobs] == [a1.id]
    assert [job.id for job in (await store.list_jobs(JobQuery(type="b"))).jobs] == [b1.id]
    assert (await store.list_jobs(JobQuery(status=JobStatus.FAILED))).jobs == []


async def test_list_rejects_a_forged_cursor(store: JobStore) -> None:
    with pytest.raises(InvalidJob):
        await store.list_jobs(JobQuery(cursor="not-a-cursor"))


async def test_stats_count_each_status(store: JobStore, make_job: MakeJob) -> None:
    await store.add([make_job("a") for _ in range(4)] + [make_job("a", delay_ms=10_000)])
    await store.add([make_job("b")])
    leases = await store.claim(["a"], limit=3, lease_ms=LEASE)
    await store.settle(
        [
            complete(leases[0].job.id, leases[0].token),
            Outcome(job_id=leases[1].job.id, token=leases[1].token, kind=OutcomeKind.FAIL),
        ]
    )
    pending_b = (await store.list_jobs(JobQuery(type="b"))).jobs[0]
    await store.cancel(pending_b.id)
    stats = {row.type: row for row in (await store.stats()).types}
    a, b = stats["a"], stats["b"]
    assert (a.pending, a.scheduled, a.running, a.completed, a.failed, a.cancelled) == (
        1,
        1,
        1,
        1,
        1,
        0,
    )
    assert (b.pending, b.cancelled) == (0, 1)


# -- watch ----------------------------------------------------------------------


async def test_watch_follows_a_job_to_its_end(store: JobStore, make_job: MakeJob) -> None:
    job = make_job()
    await store.add([job])
    seen: list[JobStatus] = []
    first_seen = asyncio.Event()

    async def follow() -> None:
        async for update in store.watch(job.id):
            seen.append(update.status)
            first_seen.set()

    watcher = asyncio.create_task(follow())
    await asyncio.wait_for(first_seen.wait(), 5)
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    await asyncio.sleep(0.05)
    await store.settle([complete(job.id, lease.token)])
    await asyncio.wait_for(watcher, 5)
    assert seen[0] is JobStatus.PENDING
    assert seen[-1] is JobStatus.COMPLETED
    assert seen == sorted(seen)


async def test_watch_of_unknown_job(store: JobStore, make_job: MakeJob) -> None:
    with pytest.raises(JobNotFound):
        async for _ in store.watch(make_job().id):
            pass
