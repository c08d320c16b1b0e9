"""retry_job, delete_job, bulk_page and bulk_jobs of both clients, against a real server."""

from __future__ import annotations

import pytest

from jobqueue.client import (
    AsyncJobClient,
    BulkAction,
    BulkTotals,
    JobAlreadyFinished,
    JobClient,
    JobNotFound,
    JobSpec,
    JobStatus,
    WrongJobStatus,
)
from tests.client.test_cli import MISSING_ID

pytestmark = pytest.mark.integration


def cancelled(client: JobClient, job_type: str, count: int) -> list[str]:
    jobs = client.enqueue_many([JobSpec(job_type) for _ in range(count)])
    for job in jobs:
        client.cancel(job.id)
    return [job.id for job in jobs]


def test_the_blocking_client_retries_deletes_and_pages(target: str) -> None:
    with JobClient(target=target, timeout_s=5) as client:
        (job_id,) = cancelled(client, "sdk_adm_one", 1)
        retried = client.retry_job(job_id)
        assert (retried.status, retried.attempts) == (JobStatus.PENDING, 0)
        with pytest.raises(WrongJobStatus, match="PENDING") as caught:
            client.retry_job(job_id)
        assert isinstance(caught.value, JobAlreadyFinished)
        assert caught.value.job_id == job_id
        with pytest.raises(WrongJobStatus, match="cancel it first"):
            client.delete_job(job_id)
        client.cancel(job_id)
        assert client.delete_job(job_id).status is JobStatus.CANCELLED
        with pytest.raises(JobNotFound):
            client.get(job_id)
        with pytest.raises(JobNotFound):
            client.retry_job(MISSING_ID)

        ids = cancelled(client, "sdk_adm_bulk", 5)
        first = client.bulk_page("retry", type="sdk_adm_bulk", limit=2)
        assert (first.matched, first.changed) == (2, 2)
        assert first.next_page_token
        totals = client.bulk_jobs(BulkAction.RETRY, type="sdk_adm_bulk", status="cancelled")
        assert totals == BulkTotals(matched=3, changed=3, calls=1)
        assert {client.get(job_id).status for job_id in ids} == {JobStatus.PENDING}
        with pytest.raises(ValueError, match="not both"):
            client.bulk_page("delete", older_than_s=1, updated_before=1)


async def test_the_async_client_offers_the_same(target: str) -> None:
    async with AsyncJobClient(target=target, timeout_s=5) as client:
        jobs = await client.enqueue_many([JobSpec("sdk_adm_async") for _ in range(4)])
        totals = await client.bulk_jobs("cancel", type="sdk_adm_async", limit=3)
        assert (totals.matched, totals.changed, totals.calls) == (4, 4, 2)
        retried = await client.retry_job(jobs[0].id)
        assert retried.status is JobStatus.PENDING
        purged = await client.bulk_jobs(
            BulkAction.DELETE, type="sdk_adm_async", status=JobStatus.CANCELLED
        )
        assert (purged.matched, purged.changed) == (3, 3)
        # Nothing was updated a day ago: an older_than_s purge finds none.
        none = await client.bulk_jobs("delete", type="sdk_adm_async", older_than_s=86_400)
        assert none.matched == 0
        with pytest.raises(JobNotFound):
            await client.delete_job(jobs[1].id)
