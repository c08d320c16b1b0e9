"""Listing jobs for a page: the store's filters (type, status, cursor) plus a time range.

The store lists by status, then type, then a position in time (PENDING: due
time; terminal: finish time), so with a type and a status chosen a time range
is a start position (a cursor made here) and a stop: no scan of the store.
RUNNING jobs sort by lease deadline, which no one filters on, so their range
is refused rather than faked.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue.domain import (
    InvalidJob,
    Job,
    JobService,
    JobStatus,
    ListPosition,
    encode_cursor,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Filter:
    """What a jobs page shows; times are ms since the epoch."""

    type: str | None = None
    status: JobStatus | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    @property
    def ranged(self) -> bool:
        return self.since_ms is not None or self.until_ms is not None


@dataclass(frozen=True, slots=True)
class Listing:
    jobs: list[Job]
    next_cursor: str


def position(job: Job) -> int:
    """Where the store sorts a job of a listable status in time."""
    if job.status is JobStatus.PENDING:
        return job.execution_time_ms
    return job.updated_at


async def list_page(service: JobService, wanted: Filter, *, cursor: str, size: int) -> Listing:
    """One page of matching jobs and the cursor of the next ("" on the last)."""
    if wanted.ranged:
        if wanted.type is None or wanted.status is None:
            raise InvalidJob("time range", "choose a type and a status to filter by time")
        if wanted.status is JobStatus.RUNNING:
            raise InvalidJob("time range", "running jobs sort by lease deadline: no time range")
        if not cursor and wanted.since_ms is not None:
            # Every id sorts after "": the listing starts at the first job at or after since.
            start = ListPosition(wanted.status, wanted.type, wanted.since_ms, "")
            cursor = encode_cursor(start)
    page = await service.list_jobs(
        job_type=wanted.type, status=wanted.status, page_size=size, cursor=cursor
    )
    jobs, next_cursor = page.jobs, page.next_cursor
    if wanted.until_ms is not None:
        kept = [job for job in jobs if position(job) <= wanted.until_ms]
        if len(kept) < len(jobs):
            jobs, next_cursor = kept, ""
    return Listing(jobs, next_cursor)


async def scheduled_page(
    service: JobService, job_type: str, *, now_ms: int, cursor: str, size: int
) -> Listing:
    """PENDING jobs of a type due after now, earliest first: a listing started at now."""
    if not cursor:
        cursor = encode_cursor(ListPosition(JobStatus.PENDING, job_type, now_ms + 1, ""))
    page = await service.list_jobs(
        job_type=job_type, status=JobStatus.PENDING, page_size=size, cursor=cursor
    )
    return Listing(page.jobs, page.next_cursor)
