"""Operators' actions on finished jobs: retry, delete, and the same over a filter in bounded pages.

They live beside ``JobService`` rather than in it because a store offers
them through a port of its own (``AdminStore``): a store written before
them still serves producers and workers.
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ._errors import InvalidJob, InvalidTransition
from ._job import Job, JobStatus
from ._validation import validate_job_id, validate_type

RETRYABLE_STATUSES = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
"""What ``retry`` takes back to PENDING: a COMPLETED job did its work, a live one is still at it."""

DEFAULT_BULK_LIMIT = 1_000
"""Jobs one bulk call examines when the caller leaves it to the server."""
MAX_BULK_LIMIT = 10_000
"""Most jobs one bulk call examines: a call's cost stays bounded however many match."""


class JobNotRetryable(InvalidTransition):
    """Raised when retry is asked of a job that is not FAILED or CANCELLED."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(status, "retry")
        self.args = (f"job {job_id} is {status}: only a FAILED or CANCELLED job can be retried",)
        self.job_id = job_id


class JobNotFinished(InvalidTransition):
    """Raised when delete is asked of a PENDING or RUNNING job: it must be cancelled first."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(status, "delete")
        self.args = (f"job {job_id} is {status}: cancel it first, only a finished job is deleted",)
        self.job_id = job_id


class BulkAction(enum.IntEnum):
    """What a bulk call does to each job it examines. Values are the API's ``BulkAction``."""

    RETRY = 1
    CANCEL = 2
    DELETE = 3

    def applies_to(self, status: JobStatus) -> bool:
        """Whether the action changes a job in ``status`` (others are skipped, not errors)."""
        if self is BulkAction.RETRY:
            return status in RETRYABLE_STATUSES
        if self is BulkAction.CANCEL:
            return not status.is_terminal
        return status.is_terminal

    def walks(self, job_filter: JobFilter) -> list[JobStatus]:
        """The statuses a bulk call walks, in listing order.

        The filter's status if it names one (jobs in it that the action does
        not apply to are counted as matched, not changed); else only the
        statuses the action applies to, so a retry does not walk every
        pending job, and a job a cancel just cancelled is not met again.
        """
        if job_filter.status is not None:
            return [job_filter.status]
        return [status for status in JobStatus if self.applies_to(status)]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFilter:
    """Which jobs a bulk action examines; every field set must match.

    ``updated_before_ms`` keeps jobs last updated strictly before that time.
    """

    type: str | None = None
    status: JobStatus | None = None
    updated_before_ms: int | None = None

    def matches(self, job: Job) -> bool:
        return (
            (self.type is None or job.type == self.type)
            and (self.status is None or job.status is self.status)
            and (self.updated_before_ms is None or job.updated_at < self.updated_before_ms)
        )


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What one bulk call did; ``next_cursor`` is empty once the filter has nothing left."""

    matched: int
    changed: int
    next_cursor: str


@runtime_checkable
class AdminStore(Protocol):
    """The operators' writes a store offers besides ``JobStore``; each atomic per job."""

    async def retry(self, job_id: str) -> Job:
        """A FAILED or CANCELLED job back to PENDING, due now, attempts 0.

        Its last error stays until its next run; its idempotency key still
        names it and, like the job, no longer expires. Raises JobNotFound or
        JobNotRetryable (nothing changes then).
        """
        ...

    async def delete(self, job_id: str) -> Job:
        """Forget a finished job at once: its hash, its index entry, its idempotency key.

        Returns the job as it was. Raises JobNotFound or JobNotFinished.
        """
        ...

    async def bulk(
        self, action: BulkAction, job_filter: JobFilter, *, limit: int, cursor: str
    ) -> BulkResult:
        """Apply ``action`` to the next ``limit`` jobs (at most) the filter matches.

        Walks the listing order (``JobStore.list_jobs``) from ``cursor``, one
        shard after another; each job is re-checked and changed atomically,
        jobs the action does not apply to are counted as matched only. Raises
        InvalidJob("page_token") for a cursor this store did not issue.
        """
        ...


class AdminService:
    """Retry, delete and bulk actions; every input is checked before the store sees it."""

    def __init__(self, store: AdminStore) -> None:
        self._store = store

    async def retry(self, job_id: str) -> Job:
        return await self._store.retry(validate_job_id(job_id))

    async def delete(self, job_id: str) -> Job:
        return await self._store.delete(validate_job_id(job_id))

    async def bulk(
        self,
        action: BulkAction | int,
        job_filter: JobFilter,
        *,
        limit: int = 0,
        cursor: str = "",
    ) -> BulkResult:
        try:
            action = BulkAction(action)
        except ValueError:
            raise InvalidJob("action", "must be RETRY, CANCEL or DELETE") from None
        if job_filter.type is not None:
            validate_type(job_filter.type)
        if job_filter.updated_before_ms is not None and job_filter.updated_before_ms < 0:
            raise InvalidJob("filter.updated_before_ms", "must not be negative")
        if limit < 0 or limit > MAX_BULK_LIMIT:
            raise InvalidJob("limit", f"must be between 0 and {MAX_BULK_LIMIT}")
        return await self._store.bulk(
            action, job_filter, limit=limit or DEFAULT_BULK_LIMIT, cursor=cursor
        )


def encode_bulk_cursor(shard: int, listing: str) -> str:
    """A bulk page token: the shard being walked and the listing cursor inside it."""
    return base64.urlsafe_b64encode(json.dumps(["bulk", shard, listing]).encode()).decode()


def decode_bulk_cursor(cursor: str) -> tuple[int, str]:
    """The shard and listing cursor a bulk token names; (0, "") for the first page."""
    if not cursor:
        return 0, ""
    try:
        tag, shard, listing = json.loads(base64.urlsafe_b64decode(cursor))
        if tag != "bulk" or not isinstance(listing, str) or int(shard) < 0:
            raise ValueError(cursor)
        return int(shard), listing
    except (ValueError, TypeError):
        raise InvalidJob("page_token", "is not a token this server issued") from None
