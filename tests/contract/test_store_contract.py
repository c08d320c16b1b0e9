"""The JobStore contract: every adapter must pass every test here."""

from __future__ import annotations

import asyncio
import time

import pytest

from jobqueue.domain import (
    InvalidJob,
    JobAlreadyFinished,
    JobNotFound,
    JobQuery,
    JobStatus,
    JobStore,
    LeaseState,
    ManualClock,
    Outcome,
    OutcomeKind,
)
from tests.contract.conftest import RETENTION_MS, MakeJob

LEASE = 30_000


def complete(job_id: str, token: str, result: bytes | None = None) -> Outcome:
    return Outcome(job_id=job_id, token=token, kind=OutcomeKind.COMPLETE, result=result)


# -- add and get ----------------------------------------------------------------


async def test_added_job_reads_back_unchanged(store: JobStore, make_job: MakeJob) -> None:
    job = make_job("email", b"\x00\xffbinary", delay_ms=5_000, max_attempts=3)
    assert await store.add([job]) == [job]
    assert await store.get(job.id) == job


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
    assert await store.add([first]) == [first]
    assert await store.add([again]) == [first]
    assert await store.get(again.id) is None
    page = await store.list_jobs(JobQuery())
    assert [job.id for job in page.jobs] == [first.id]


async def test_idempotency_key_repeated_within_one_batch(
    store: JobStore, make_job: MakeJob
) -> None:
    a, b, c = make_job(idempotency_key="k"), make_job(idempotency_key="k"), make_job()
    assert await store.add([a, b, c]) == [a, a, c]


async def test_a_batch_key_returns_the_first_batch_as_it_is_now(
    store: JobStore, make_job: MakeJob
) -> None:
    first = [make_job(), make_job(job_type="sms")]
    assert await store.add(first, batch_key="import-7") == first
    await store.claim(["email"], limit=1, lease_ms=LEASE)
    retry = [make_job(), make_job(job_type="sms"), make_job()]
    again = await store.add(retry, batch_key="import-7")
    assert [job.id for job in again] == [job.id for job in first]
    assert again[0].status is JobStatus.RUNNING
    assert all([await store.get(job.id) is None for job in retry])
    assert (await store.stats()).total.pending == 1


async def test_batch_keys_name_batches_not_jobs(store: JobStore, make_job: MakeJob) -> None:
    keyed = make_job(idempotency_key="shared")
    assert await store.add([keyed], batch_key="shared") == [keyed]
    other = make_job()
    assert await store.add([other], batch_key="other") == [other]
    inner = make_job(idempotency_key="shared")
    assert await store.add([inner, make_job()], batch_key="third") != [inner]
    assert (await store.add([make_job(idempotency_key="shared")]))[0].id == keyed.id


async def test_a_batch_key_is_forgotten_after_the_retention_period(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    first = [make_job(delay_ms=10 * RETENTION_MS)]
    await store.add(first, batch_key="nightly")
    clock.advance(RETENTION_MS - 1)
    assert await store.add([make_job()], batch_key="nightly") == first
    clock.advance(1)
    fresh = [make_job(delay_ms=10 * RETENTION_MS)]
    assert await store.add(fresh, batch_key="nightly") == fresh
    assert await store.add([make_job()], batch_key="nightly") == fresh


async def test_a_batch_key_whose_jobs_are_gone_stores_anew(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    # A job keyed by an earlier call can finish, and expire, before the batch key.
    done = make_job(idempotency_key="early")
    await store.add([done])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    await store.settle([complete(lease.job.id, lease.token)])
    clock.advance(RETENTION_MS // 2)
    assert (await store.add([make_job(idempotency_key="early")], batch_key="b"))[0].id == done.id
    clock.advance(RETENTION_MS // 2)
    await store.requeue_expired()
    assert await store.get(done.id) is None
    fresh = make_job(idempotency_key="early")
    assert await store.add([fresh], batch_key="b") == [fresh]


# -- claim ----------------------------------------------------------------------


async def test_claim_takes_due_jobs_in_due_order(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    late, early, future = make_job(delay_ms=-10), make_job(delay_ms=-20), make_job(delay_ms=1_000)
    await store.add([late, early, future])
    leases = await store.claim(["email"], limit=10, lease_ms=LEASE)
    assert [lease.job.id for lease in leases] == [early.id, late.id]
    for lease in leases:
        assert lease.job.status is JobStatus.RUNNING
        assert lease.job.attempts == 1
        assert lease.deadline_ms == clock.now_ms() + LEASE
    assert len({lease.token for lease in leases}) == 2
    clock.advance(1_000)
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


async def test_complete_stores_result(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    job = make_job()
    await store.add([job])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    clock.advance(7)
    assert await store.settle([complete(job.id, lease.token, b"done")]) == [True]
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.COMPLETED
    assert stored.result == b"done"
    assert stored.updated_at == clock.now_ms()


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


async def test_retry_requeues_at_the_given_time(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    job = make_job()
    await store.add([job])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    retry_at = clock.now_ms() + 500
    outcome = Outcome(
        job_id=job.id, token=lease.token, kind=OutcomeKind.RETRY, error="boom", retry_at_ms=retry_at
    )
    assert await store.settle([outcome]) == [True]
    stored = await store.get(job.id)
    assert stored is not None
    assert (stored.status, stored.execution_time_ms, stored.last_error, stored.attempts) == (
        JobStatus.PENDING,
        retry_at,
        "boom",
        1,
    )
    assert await store.claim(["email"], limit=1, lease_ms=LEASE) == []
    clock.advance(500)
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


# -- leases ---------------------------------------------------------------------


async def test_renew_extends_the_lease(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    await store.add([make_job()])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=1_000)
    clock.advance(900)
    assert await store.renew([(lease.job.id, lease.token)], lease_ms=1_000) == [LeaseState.ACTIVE]
    clock.advance(900)
    assert await store.requeue_expired() == 0
    clock.advance(200)
    assert await store.requeue_expired() == 1


async def test_renew_reports_lost_leases(store: JobStore, make_job: MakeJob) -> None:
    await store.add([make_job()])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=1_000)
    assert await store.renew([(lease.job.id, "stale"), ("missing", "x")], lease_ms=1_000) == [
        LeaseState.LOST,
        LeaseState.LOST,
    ]


async def test_expired_lease_is_redelivered_and_the_stale_worker_cannot_settle(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    job = make_job()
    await store.add([job])
    (first,) = await store.claim(["email"], limit=1, lease_ms=1_000)
    clock.advance(1_000)
    assert await store.requeue_expired() == 1
    (second,) = await store.claim(["email"], limit=1, lease_ms=1_000)
    assert second.job.id == job.id
    assert second.job.attempts == 2
    assert await store.settle([complete(job.id, first.token, b"stale")]) == [False]
    assert await store.renew([(job.id, first.token)], lease_ms=1_000) == [LeaseState.LOST]
    assert await store.settle([complete(job.id, second.token, b"fresh")]) == [True]
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.result == b"fresh"


async def test_lease_expiry_on_the_last_attempt_fails_the_job(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    job = make_job(max_attempts=1)
    await store.add([job])
    await store.claim(["email"], limit=1, lease_ms=1_000)
    clock.advance(1_000)
    assert await store.requeue_expired() == 1
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.FAILED
    assert stored.last_error == "lease expired on the last attempt"


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
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    job = make_job()
    await store.add([job])
    await store.claim(["email"], limit=1, lease_ms=1_000)
    await store.cancel(job.id)
    clock.advance(1_000)
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


# -- retention ------------------------------------------------------------------


async def test_finished_jobs_expire_after_retention(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    done, keyed = make_job(), make_job(idempotency_key="once")
    await store.add([done, keyed])
    leases = await store.claim(["email"], limit=2, lease_ms=LEASE)
    await store.settle([complete(lease.job.id, lease.token) for lease in leases])
    clock.advance(RETENTION_MS - 1)
    assert await store.get(done.id) is not None
    clock.advance(1)
    await store.requeue_expired()
    assert await store.get(done.id) is None
    assert (await store.list_jobs(JobQuery())).jobs == []
    assert (await store.stats()).types == []
    fresh = make_job(idempotency_key="once")
    assert await store.add([fresh]) == [fresh]


async def test_pending_jobs_never_expire(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    job = make_job(delay_ms=10 * RETENTION_MS)
    await store.add([job])
    clock.advance(5 * RETENTION_MS)
    await store.requeue_expired()
    assert await store.get(job.id) == job


# -- list and stats -------------------------------------------------------------


async def test_list_pages_through_every_match_once(
    store: JobStore, make_job: MakeJob, clock: ManualClock
) -> None:
    jobs = [make_job(job_type, delay_ms=i) for i in range(7) for job_type in ("b", "a")]
    await store.add(jobs)
    leases = await store.claim(["a"], limit=2, lease_ms=LEASE)
    await store.settle([complete(leases[0].job.id, leases[0].token)])
    clock.advance(1)
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
