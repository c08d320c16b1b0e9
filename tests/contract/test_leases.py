"""Leases a worker can trust, on every store (issue 11, items 2 and 4).

A renew sets the deadline to the store's now plus the lease; an expired lease
is handed back by the sweep, or fails the job on its last attempt.

A claim's attempt is provisional until the lease's first renew or settle: a
lease that expires unconfirmed (its reply may never have reached a worker)
gives the attempt back, up to MAX_UNCONFIRMED_DELIVERIES times in a row. And a
lease whose deadline passed is gone at once, by the store's clock: a late
renew or settle is refused and changes nothing, even before a sweep.
"""

from __future__ import annotations

import pytest

from jobqueue.domain import (
    MAX_UNCONFIRMED_DELIVERIES,
    Job,
    JobStatus,
    JobStore,
    Lease,
    LeaseState,
    Outcome,
    OutcomeKind,
)
from tests.contract.conftest import MakeJob, Passage

LEASE = 30_000
SHORT = 50
"""A lease the tests wait out: every wait is real on Redis."""


async def claim_one(store: JobStore, *, lease_ms: int = SHORT) -> Lease:
    (lease,) = await store.claim(["email"], limit=1, lease_ms=lease_ms)
    return lease


async def confirmed(store: JobStore, *, lease_ms: int = SHORT) -> Lease:
    """Claim the due email job with a long lease, then confirm it by renewing to ``lease_ms``."""
    lease = await claim_one(store, lease_ms=LEASE)
    renewal = [(lease.job.id, lease.token)]
    assert await store.renew(renewal, lease_ms=lease_ms) == [LeaseState.ACTIVE]
    return lease


async def expire(store: JobStore, passage: Passage) -> None:
    """Wait out a SHORT lease and sweep it."""
    await passage.advance(SHORT)
    assert await store.requeue_expired() == 1


def complete(job_id: str, token: str, result: bytes | None = None) -> Outcome:
    return Outcome(job_id=job_id, token=token, kind=OutcomeKind.COMPLETE, result=result)


async def stored(store: JobStore, job: Job) -> Job:
    found = await store.get(job.id)
    assert found is not None
    return found


# -- renew and expiry -------------------------------------------------------------------


async def test_renew_sets_the_deadline_to_the_stores_now_plus_the_lease(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    first_ms = passage.guard_ms + 100
    await store.add([make_job()])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=first_ms)
    renewal = [(lease.job.id, lease.token)]
    assert await store.renew(renewal, lease_ms=LEASE) == [LeaseState.ACTIVE]
    await passage.advance(first_ms)  # the claim's deadline passed; the renewed one did not
    assert await store.requeue_expired() == 0
    assert await store.renew(renewal, lease_ms=LEASE) == [LeaseState.ACTIVE]
    # A renew sets the deadline, even to an earlier one.
    assert await store.renew(renewal, lease_ms=50) == [LeaseState.ACTIVE]
    await passage.advance(50)
    assert await store.requeue_expired() == 1


async def test_renew_reports_lost_leases(store: JobStore, make_job: MakeJob) -> None:
    await store.add([make_job()])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=1_000)
    assert await store.renew([(lease.job.id, "stale"), ("missing", "x")], lease_ms=1_000) == [
        LeaseState.LOST,
        LeaseState.LOST,
    ]


async def test_expired_lease_is_redelivered_and_the_stale_worker_cannot_settle(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    job = make_job()
    await store.add([job])
    first = await confirmed(store)
    await passage.advance(50)
    assert await store.requeue_expired() == 1
    (second,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    assert second.job.id == job.id
    assert second.job.attempts == 2
    assert await store.settle([complete(job.id, first.token, b"stale")]) == [False]
    assert await store.renew([(job.id, first.token)], lease_ms=LEASE) == [LeaseState.LOST]
    assert await store.settle([complete(job.id, second.token, b"fresh")]) == [True]
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.result == b"fresh"


async def test_lease_expiry_on_the_last_attempt_fails_the_job(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    job = make_job(max_attempts=1)
    await store.add([job])
    await confirmed(store)
    await passage.advance(50)
    assert await store.requeue_expired() == 1
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.status is JobStatus.FAILED
    assert stored.last_error == "lease expired on the last attempt"


# -- confirmed attempts ---------------------------------------------------------------


async def test_a_lease_that_expires_unconfirmed_gives_its_attempt_back(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    job = make_job(max_attempts=1)
    await store.add([job])
    assert (await claim_one(store)).job.attempts == 1
    await expire(store, passage)
    # Not FAILED with attempts=1: for all the store knows, the job never ran.
    after = await stored(store, job)
    assert (after.status, after.attempts, after.last_error) == (JobStatus.PENDING, 0, None)
    assert (await claim_one(store)).job.attempts == 1


async def test_unconfirmed_expiries_count_once_they_pass_the_allowance(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    # A job that kills its worker before the first renew looks the same as a
    # lost reply; the allowance is bounded so that such a job still ends.
    job = make_job(max_attempts=1)
    await store.add([job])
    for _ in range(MAX_UNCONFIRMED_DELIVERIES):
        await claim_one(store)
        await expire(store, passage)
        assert (await stored(store, job)).attempts == 0
    await claim_one(store)
    await expire(store, passage)
    after = await stored(store, job)
    assert (after.status, after.attempts) == (JobStatus.FAILED, 1)
    assert after.last_error == "lease expired on the last attempt"


async def test_a_renew_confirms_the_attempt(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    job = make_job(max_attempts=1)
    await store.add([job])
    await confirmed(store)
    await expire(store, passage)
    after = await stored(store, job)
    assert (after.status, after.attempts) == (JobStatus.FAILED, 1)


@pytest.mark.parametrize("confirm_by", ["renew", "settle"])
async def test_a_confirmed_lease_ends_a_run_of_unconfirmed_expiries(
    store: JobStore, make_job: MakeJob, passage: Passage, confirm_by: str
) -> None:
    job = make_job(max_attempts=5)
    await store.add([job])
    for _ in range(MAX_UNCONFIRMED_DELIVERIES):
        await claim_one(store)
        await expire(store, passage)
    if confirm_by == "renew":
        await confirmed(store)
        await expire(store, passage)
    else:
        lease = await claim_one(store, lease_ms=LEASE)
        retry = Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.RETRY, error="e")
        assert await store.settle([retry]) == [True]
    assert (await stored(store, job)).attempts == 1
    # The run of unconfirmed expiries starts again: this one is given back.
    await claim_one(store)
    await expire(store, passage)
    after = await stored(store, job)
    assert (after.status, after.attempts) == (JobStatus.PENDING, 1)


# -- fencing by deadline ----------------------------------------------------------------


def every_outcome(lease: Lease) -> list[Outcome]:
    job_id, token = lease.job.id, lease.token
    return [
        Outcome(job_id=job_id, token=token, kind=OutcomeKind.COMPLETE, result=b"late"),
        Outcome(job_id=job_id, token=token, kind=OutcomeKind.RETRY, error="e", retry_delay_ms=0),
        Outcome(job_id=job_id, token=token, kind=OutcomeKind.FAIL, error="e"),
        Outcome(job_id=job_id, token=token, kind=OutcomeKind.RELEASE),
        Outcome(job_id=job_id, token=token, kind=OutcomeKind.CANCELLED),
    ]


@pytest.mark.parametrize("was_confirmed", [True, False])
async def test_renew_and_settle_after_the_deadline_are_refused_and_change_nothing(
    store: JobStore, make_job: MakeJob, passage: Passage, was_confirmed: bool
) -> None:
    job = make_job()
    await store.add([job])
    lease = await (confirmed(store) if was_confirmed else claim_one(store))
    await passage.advance(SHORT)  # past the deadline; no sweep has run
    before = await stored(store, job)
    assert before.status is JobStatus.RUNNING
    assert await store.renew([(job.id, lease.token)], lease_ms=LEASE) == [LeaseState.LOST]
    for outcome in every_outcome(lease):
        assert await store.settle([outcome]) == [False]
    assert await stored(store, job) == before
    # Nor did the late calls confirm the lease: the sweep sees it as it was.
    assert await store.requeue_expired() == 1
    after = await stored(store, job)
    assert (after.status, after.attempts, after.result) == (
        JobStatus.PENDING,
        1 if was_confirmed else 0,
        None,
    )


async def test_a_lease_holds_until_its_deadline(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    # The other side of the fence: short of the deadline (by the store's
    # "not yet" guard, 0 on a manual clock) a settle still applies.
    job = make_job()
    await store.add([job])
    lease_ms = passage.guard_ms + 100
    lease = await claim_one(store, lease_ms=lease_ms)
    await passage.advance(lease_ms - passage.guard_ms - 1)
    done = Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.COMPLETE, result=b"ok")
    assert await store.settle([done]) == [True]
    assert (await stored(store, job)).status is JobStatus.COMPLETED
