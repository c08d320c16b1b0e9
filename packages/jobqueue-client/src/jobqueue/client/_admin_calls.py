"""AdminService's job actions of both clients, written once (as ``_calls`` does).

Retry and delete change a job once: repeated after a lost reply, the second
attempt would find the job already changed and fail, so they are not
retried (``Unary.retryable``). A bulk call is bounded by the server (at
most ``limit`` jobs examined per call); ``BulkRun`` is the loop over its
pages that ``bulk_jobs`` makes, and each page is safe to repeat: a job
already changed is counted as matched, not changed.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mpataki.jobqueue.v1 import admin_pb2 as pb
from mpataki.jobqueue.v1 import admin_pb2_grpc as pb_grpc
from mpataki.jobqueue.v1 import jobqueue_pb2 as jpb

from ._calls import Unary, _job
from ._errors import JobAlreadyFinished, JobQueueClientError
from ._models import Job, JobStatus

_STUB = pb_grpc.AdminServiceStub


class WrongJobStatus(JobAlreadyFinished):
    """Raised when a job's status does not allow the action: retrying a PENDING or
    COMPLETED job, deleting a PENDING or RUNNING one (cancel it first).

    A ``JobAlreadyFinished`` (both are the server's FAILED_PRECONDITION), so code
    catching that one catches this too; the message names the status.
    """


def _wrong_status(error: JobQueueClientError) -> JobQueueClientError:
    if type(error) is JobAlreadyFinished:
        return WrongJobStatus(error.message, code=error.code, job_id=error.job_id)
    return error


class BulkAction(enum.Enum):
    """What ``bulk_jobs`` does to each job its filter matches."""

    RETRY = "retry"
    """FAILED and CANCELLED jobs run again (see ``retry_job``)."""
    CANCEL = "cancel"
    """PENDING jobs end CANCELLED, RUNNING ones are asked to stop."""
    DELETE = "delete"
    """Finished jobs are forgotten (see ``delete_job``): a purge."""


_ACTIONS = {
    BulkAction.RETRY: pb.BULK_ACTION_RETRY,
    BulkAction.CANCEL: pb.BULK_ACTION_CANCEL,
    BulkAction.DELETE: pb.BULK_ACTION_DELETE,
}
_STATUSES = {status: jpb.JobStatus.Value(f"JOB_STATUS_{status.name}") for status in JobStatus}


@dataclass(frozen=True, slots=True)
class BulkPage:
    """What one bulk call did, and the token for the next (empty when done)."""

    matched: int
    changed: int
    next_page_token: str


@dataclass(frozen=True, slots=True)
class BulkTotals:
    """What ``bulk_jobs`` did over all its calls."""

    matched: int
    changed: int
    calls: int


def retry_job(job_id: str) -> Unary[Job]:
    """Run a FAILED or CANCELLED job again: PENDING, due now, with a fresh attempt budget.

    Its ``attempts`` restart at 0; its ``last_error`` stays readable until
    its next run; its idempotency key still names it.

    Returns:
        The job, PENDING.

    Raises:
        JobNotFound: no such job.
        WrongJobStatus: the job is PENDING, RUNNING or COMPLETED.
    """
    request = pb.RetryJobRequest(id=job_id)
    return Unary(
        "RetryJob", request, _job, job_id, stub=_STUB, refine=_wrong_status, retryable=False
    )


def delete_job(job_id: str) -> Unary[Job]:
    """Forget a finished job now: it, its index entries and its idempotency key.

    Returns:
        The job as it was.

    Raises:
        JobNotFound: no such job.
        WrongJobStatus: the job is PENDING or RUNNING (cancel it first).
    """
    request = pb.DeleteJobRequest(id=job_id)
    return Unary(
        "DeleteJob", request, _job, job_id, stub=_STUB, refine=_wrong_status, retryable=False
    )


def _bulk_page(response: Any) -> BulkPage:
    return BulkPage(response.matched, response.changed, response.next_page_token)


def _updated_before_ms(
    older_than_s: timedelta | float | None, updated_before: datetime | int | None
) -> int | None:
    if older_than_s is not None and updated_before is not None:
        raise ValueError("give older_than_s or updated_before, not both")
    if older_than_s is not None:
        seconds = (
            older_than_s.total_seconds() if isinstance(older_than_s, timedelta) else older_than_s
        )
        return int(time.time() * 1000 - seconds * 1000)
    if isinstance(updated_before, datetime):
        return int(updated_before.timestamp() * 1000)
    return updated_before


def bulk_page(
    action: BulkAction | str,
    *,
    type: str | None = None,
    status: JobStatus | str | None = None,
    older_than_s: timedelta | float | None = None,
    updated_before: datetime | int | None = None,
    limit: int = 0,
    page_token: str = "",
) -> Unary[BulkPage]:
    """One bounded bulk call: ``action`` on at most ``limit`` jobs matching the filter.

    Pass the returned ``next_page_token`` to go on; ``bulk_jobs`` loops for you.

    Args:
        action: ``BulkAction`` or its value (``"retry"``, ``"cancel"``, ``"delete"``).
        type: only jobs of this type.
        status: only jobs in this status.
        older_than_s: only jobs last updated more than this long ago.
        updated_before: or before this time (a datetime or epoch milliseconds).
        limit: jobs examined by this call; 0 is the server's default (1,000).
    """
    job_filter = pb.JobFilter(
        type=type,
        updated_before_ms=_updated_before_ms(older_than_s, updated_before),
    )
    if status is not None:
        job_filter.status = _STATUSES[JobStatus(status)]
    request = pb.BulkJobsRequest(
        action=_ACTIONS[BulkAction(action)], filter=job_filter, limit=limit, page_token=page_token
    )
    return Unary("BulkJobs", request, _bulk_page, stub=_STUB)


class BulkRun:
    """The calls ``bulk_jobs`` makes: the next one, and the totals so far."""

    def __init__(self, first: Unary[BulkPage]) -> None:
        self._next: Unary[BulkPage] | None = first
        self.matched = self.changed = self.calls = 0

    def next_call(self) -> Unary[BulkPage] | None:
        return self._next

    def take(self, page: BulkPage) -> BulkPage:
        """Count ``page``; the next call goes on from its token, if any."""
        self.matched += page.matched
        self.changed += page.changed
        self.calls += 1
        current = self._next
        self._next = None
        if page.next_page_token and current is not None:
            request = pb.BulkJobsRequest()
            request.CopyFrom(current.request)
            request.page_token = page.next_page_token
            self._next = Unary("BulkJobs", request, _bulk_page, stub=_STUB)
        return page

    @property
    def totals(self) -> BulkTotals:
        return BulkTotals(self.matched, self.changed, self.calls)


def bulk_run(
    action: BulkAction | str,
    *,
    type: str | None = None,
    status: JobStatus | str | None = None,
    older_than_s: timedelta | float | None = None,
    updated_before: datetime | int | None = None,
    limit: int = 0,
) -> BulkRun:
    """``action`` on every job the filter matches, a bounded call at a time (see ``bulk_page``).

    Returns the totals once the server has no more jobs to examine. Jobs that
    start matching during the run (a job failing meanwhile) may be missed.
    """
    return BulkRun(
        bulk_page(
            action,
            type=type,
            status=status,
            older_than_s=older_than_s,
            updated_before=updated_before,
            limit=limit,
        )
    )
