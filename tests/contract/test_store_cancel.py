"""The JobStore contract, part three: cancelling a job, pending or running.

Every adapter must pass every test here. A cancel ends a pending job at once and asks
a running job's worker to stop, which then wins over every other way the job
could go back to the queue. (The stream of cancel requests workers listen to is
test_cancellations.py.)

Times are the store's own (Redis's TIME, or the memory store's clock): a test
reads them through ``passage`` around a call and asserts bounds, which on the
memory store's manual clock are exact. See conftest.py for what a wait on
Redis can and cannot prove.
"""

from __future__ import annotations

import asyncio

import pytest

from jobqueue.domain import (
    JobAlreadyFinished,
    JobNotFound,
    JobStatus,
    JobStore,
    LeaseState,
    Outcome,
    OutcomeKind,
)
from tests.contract.conftest import MakeJob, Passage

LEASE = 30_000


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
