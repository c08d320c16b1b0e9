"""Operators' writes on every store: retry, delete, and bulk actions paged over a filter."""

from __future__ import annotations

from typing import cast

import pytest

from jobqueue.domain import (
    AdminStore,
    BulkAction,
    BulkResult,
    InvalidJob,
    JobFilter,
    JobNotFinished,
    JobNotFound,
    JobNotRetryable,
    JobQuery,
    JobStatus,
    JobStore,
    Outcome,
    OutcomeKind,
    encode_bulk_cursor,
)
from tests.contract.conftest import MakeJob, Passage


def admin(store: JobStore) -> AdminStore:
    assert isinstance(store, AdminStore)
    return cast(AdminStore, store)


async def failed(
    store: JobStore,
    make_job: MakeJob,
    job_type: str = "email",
    *,
    idempotency_key: str | None = None,
) -> str:
    job = make_job(job_type, idempotency_key=idempotency_key)
    await store.add([job])
    (lease,) = await store.claim([job_type], limit=1, lease_ms=60_000)
    outcome = Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.FAIL, error="boom")
    assert await store.settle([outcome]) == [True]
    return lease.job.id


async def completed(store: JobStore, make_job: MakeJob, job_type: str = "email") -> str:
    await store.add([make_job(job_type)])
    (lease,) = await store.claim([job_type], limit=1, lease_ms=60_000)
    done = Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE, result=b"ok")
    assert await store.settle([done]) == [True]
    return lease.job.id


async def test_retry_brings_a_failed_job_back_with_a_fresh_budget(
    store: JobStore, make_job: MakeJob
) -> None:
    job_id = await failed(store, make_job, idempotency_key="once")
    job = await admin(store).retry(job_id)
    assert job.status is JobStatus.PENDING
    assert job.attempts == 0
    assert job.last_error == "boom"  # readable until the next run
    (lease,) = await store.claim(["email"], limit=1, lease_ms=60_000)
    assert lease.job.id == job_id
    assert lease.job.attempts == 1
    # Its idempotency key still names it.
    (again,) = await store.add([make_job("email", idempotency_key="once")])
    assert again.id == job_id


async def test_retry_takes_a_cancelled_job_too(store: JobStore, make_job: MakeJob) -> None:
    job = make_job("email")
    await store.add([job])
    await store.cancel(job.id)
    retried = await admin(store).retry(job.id)
    assert retried.status is JobStatus.PENDING
    assert (await store.get(job.id)) == retried


async def test_retry_refuses_live_and_completed_jobs_and_changes_nothing(
    store: JobStore, make_job: MakeJob
) -> None:
    (pending,) = await store.add([make_job("email")])
    with pytest.raises(JobNotRetryable, match="PENDING"):
        await admin(store).retry(pending.id)
    assert (await store.get(pending.id)) == pending
    done = await completed(store, make_job, "other")
    before = await store.get(done)
    with pytest.raises(JobNotRetryable, match="COMPLETED"):
        await admin(store).retry(done)
    assert (await store.get(done)) == before
    with pytest.raises(JobNotFound):
        await admin(store).retry(make_job("email").id)


async def test_delete_forgets_a_finished_job_its_index_entry_and_its_key(
    store: JobStore, make_job: MakeJob
) -> None:
    job_id = await failed(store, make_job, idempotency_key="k1")
    deleted = await admin(store).delete(job_id)
    assert deleted.id == job_id
    assert deleted.status is JobStatus.FAILED
    assert await store.get(job_id) is None
    listed = await store.list_jobs(JobQuery(status=JobStatus.FAILED))
    assert job_id not in [job.id for job in listed.jobs]
    (fresh,) = await store.add([make_job("email", idempotency_key="k1")])
    assert fresh.id != job_id
    with pytest.raises(JobNotFound):
        await admin(store).delete(job_id)


async def test_delete_refuses_a_live_job_and_changes_nothing(
    store: JobStore, make_job: MakeJob
) -> None:
    (job,) = await store.add([make_job("email")])
    with pytest.raises(JobNotFinished, match="PENDING"):
        await admin(store).delete(job.id)
    assert (await store.get(job.id)) == job


async def drain(
    store: JobStore, action: BulkAction, job_filter: JobFilter, *, limit: int
) -> list[BulkResult]:
    results = []
    cursor = ""
    for _ in range(100):
        result = await admin(store).bulk(action, job_filter, limit=limit, cursor=cursor)
        results.append(result)
        assert result.matched <= limit
        cursor = result.next_cursor
        if not cursor:
            return results
    raise AssertionError("the bulk action never ended")


async def test_bulk_retry_pages_over_the_filter_and_leaves_the_rest(
    store: JobStore, make_job: MakeJob
) -> None:
    ids = [await failed(store, make_job, "report") for _ in range(7)]
    other = await failed(store, make_job, "email")
    done = await completed(store, make_job, "report")
    results = await drain(
        store, BulkAction.RETRY, JobFilter(type="report", status=JobStatus.FAILED), limit=3
    )
    assert len(results) >= 3
    assert sum(r.matched for r in results) == 7
    assert sum(r.changed for r in results) == 7
    for job_id in ids:
        assert (await store.get(job_id)).status is JobStatus.PENDING  # type: ignore[union-attr]
    assert (await store.get(other)).status is JobStatus.FAILED  # type: ignore[union-attr]
    assert (await store.get(done)).status is JobStatus.COMPLETED  # type: ignore[union-attr]


async def test_bulk_counts_a_named_status_it_cannot_change_and_walks_only_its_own_else(
    store: JobStore, make_job: MakeJob
) -> None:
    done = await completed(store, make_job, "mixed")
    gone = await failed(store, make_job, "mixed")
    await store.add([make_job("mixed")])
    # A status the action does not apply to: examined, counted, not changed.
    named = await drain(
        store, BulkAction.RETRY, JobFilter(type="mixed", status=JobStatus.COMPLETED), limit=100
    )
    assert (sum(r.matched for r in named), sum(r.changed for r in named)) == (1, 0)
    # No status: only the statuses a retry takes (FAILED, CANCELLED) are walked.
    results = await drain(store, BulkAction.RETRY, JobFilter(type="mixed"), limit=100)
    assert (sum(r.matched for r in results), sum(r.changed for r in results)) == (1, 1)
    assert (await store.get(done)).status is JobStatus.COMPLETED  # type: ignore[union-attr]
    assert (await store.get(gone)).status is JobStatus.PENDING  # type: ignore[union-attr]


async def test_a_bulk_cancel_meets_each_job_once(store: JobStore, make_job: MakeJob) -> None:
    await store.add([make_job("once") for _ in range(5)])
    results = await drain(store, BulkAction.CANCEL, JobFilter(type="once"), limit=2)
    assert (sum(r.matched for r in results), sum(r.changed for r in results)) == (5, 5)


async def test_bulk_cancel_over_every_type(store: JobStore, make_job: MakeJob) -> None:
    jobs = [make_job(job_type) for job_type in ("a", "b", "c", "d", "a")]
    await store.add(jobs)
    results = await drain(store, BulkAction.CANCEL, JobFilter(status=JobStatus.PENDING), limit=2)
    assert sum(r.changed for r in results) == 5
    for job in jobs:
        assert (await store.get(job.id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]


async def test_bulk_delete_purges_what_finished_before_a_time(
    store: JobStore, make_job: MakeJob, passage: Passage
) -> None:
    old = [await completed(store, make_job, "purge") for _ in range(3)]
    await passage.advance(5)
    cutoff = await passage.now_ms()
    await passage.advance(5)
    young = await completed(store, make_job, "purge")
    live = make_job("purge")
    await store.add([live])
    results = await drain(
        store, BulkAction.DELETE, JobFilter(type="purge", updated_before_ms=cutoff), limit=10
    )
    assert sum(r.changed for r in results) == 3
    for job_id in old:
        assert await store.get(job_id) is None
    assert await store.get(young) is not None
    assert await store.get(live.id) is not None


async def test_bulk_refuses_a_token_it_did_not_issue(store: JobStore, make_job: MakeJob) -> None:
    job_id = await failed(store, make_job)
    for token in ("garbage", encode_bulk_cursor(70_000, ""), "eyJub3QiOiAiYnVsayJ9"):
        with pytest.raises(InvalidJob, match="page_token"):
            await admin(store).bulk(BulkAction.DELETE, JobFilter(), limit=10, cursor=token)
    assert (await store.get(job_id)).status is JobStatus.FAILED  # type: ignore[union-attr]


async def test_a_repeated_bulk_cancel_of_a_running_job_changes_nothing(
    store: JobStore, make_job: MakeJob
) -> None:
    (job,) = await store.add([make_job("bt")])
    await store.claim(["bt"], limit=1, lease_ms=60_000)
    running = JobFilter(type="bt", status=JobStatus.RUNNING)
    first = await admin(store).bulk(BulkAction.CANCEL, running, limit=100, cursor="")
    again = await admin(store).bulk(BulkAction.CANCEL, running, limit=100, cursor="")
    assert (first.matched, first.changed) == (1, 1)
    assert (again.matched, again.changed) == (1, 0)
    flagged = await store.get(job.id)
    assert flagged is not None
    assert flagged.cancel_requested
