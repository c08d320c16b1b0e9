"""The JobStore contract, part two: claiming due jobs and settling their leases.

Every adapter must pass every test here; adding and reading are in
test_store_add_read.py, cancels in test_store_cancel.py.

Times are the store's own (Redis's TIME, or the memory store's clock): a test
reads them through ``passage`` around a call and asserts bounds, which on the
memory store's manual clock are exact. See conftest.py for what a wait on
Redis can and cannot prove.
"""

from __future__ import annotations

import asyncio
import time

from jobqueue.domain import JobStatus, JobStore, Outcome, OutcomeKind
from tests.contract.conftest import MakeJob, Passage

LEASE = 30_000


def complete(job_id: str, token: str, result: bytes | None = None) -> Outcome:
    return Outcome(job_id=job_id, token=token, kind=OutcomeKind.COMPLETE, result=result)


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
