"""A settle that also claims (LeaseService.settle_then_claim), on every store.

The claim runs after the settle has applied: a job the batch gave back is due
again and may come back in the same call, under a new token, so the worker
that gave it back cannot settle it any more.
"""

from __future__ import annotations

from jobqueue.domain import JobStatus, JobStore, LeaseService, Outcome, OutcomeKind
from tests.contract.conftest import MakeJob

LEASE = 30_000


async def test_the_batch_settles_then_due_jobs_are_leased(
    store: JobStore, make_job: MakeJob
) -> None:
    leases = LeaseService(store)
    first, second, third = make_job(), make_job(), make_job()
    await store.add([first, second, third])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    done = Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
    accepted, got = await leases.settle_then_claim([done], ["email"], limit=5, lease_ms=LEASE)
    assert accepted == [True]
    assert sorted(x.job.id for x in got) == sorted([second.id, third.id])
    assert all(x.job.status is JobStatus.RUNNING and x.job.attempts == 1 for x in got)
    finished = await store.get(first.id)
    assert finished is not None
    assert finished.status is JobStatus.COMPLETED
    assert await leases.settle_then_claim([], ["email"], limit=5, lease_ms=LEASE) == ([], [])


async def test_a_job_given_back_in_the_batch_comes_back_under_a_new_token(
    store: JobStore, make_job: MakeJob
) -> None:
    leases = LeaseService(store)
    job = make_job()
    await store.add([job])
    (lease,) = await store.claim(["email"], limit=1, lease_ms=LEASE)
    back = Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.RELEASE)
    accepted, (again,) = await leases.settle_then_claim([back], ["email"], limit=1, lease_ms=LEASE)
    assert accepted == [True]
    assert again.job.id == job.id
    assert again.token != lease.token
    assert again.job.attempts == 1  # the released attempt was given back
    stale = Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
    assert await store.settle([stale]) == [False]
    current = await store.get(job.id)
    assert current is not None
    assert current.status is JobStatus.RUNNING
    fresh = Outcome(job_id=job.id, token=again.token, kind=OutcomeKind.COMPLETE)
    assert await store.settle([fresh]) == [True]
