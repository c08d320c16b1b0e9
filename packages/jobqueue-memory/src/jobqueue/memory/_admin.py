"""The operators' writes of the in-memory store: retry, delete and bulk actions.

Nothing here awaits between its reads and writes, so each job's change is
atomic on the event loop, as in Redis where each is one script step.
"""

from __future__ import annotations

from dataclasses import replace

from jobqueue.domain import (
    BulkAction,
    BulkResult,
    Event,
    InvalidJob,
    Job,
    JobFilter,
    JobNotFinished,
    JobNotFound,
    JobNotRetryable,
    JobStatus,
    ListPosition,
    decode_bulk_cursor,
    decode_cursor,
    encode_bulk_cursor,
    encode_cursor,
    transition,
)

from ._core import _Record
from ._reading import _ReadingMixin
from ._unique import idempotency_slot


class _AdminMixin(_ReadingMixin):
    """Retry, delete and bulk actions over the listing order."""

    async def retry(self, job_id: str) -> Job:
        self._purge()
        return self._retry_now(self._existing(job_id))

    async def delete(self, job_id: str) -> Job:
        self._purge()
        return self._delete_now(self._existing(job_id))

    async def bulk(
        self, action: BulkAction, job_filter: JobFilter, *, limit: int, cursor: str
    ) -> BulkResult:
        # One shard: the token's shard is always 0 here, and its position the
        # listing's own (a position this store did not write fails to decode).
        shard, listing = decode_bulk_cursor(cursor)
        if shard != 0:
            raise InvalidJob("page_token", "is not a token this server issued")
        self._purge()
        after = decode_cursor(listing)
        examined: list[ListPosition] = []
        for status in action.walks(job_filter):
            if len(examined) >= limit:
                break
            examined += self._index.page(status, job_filter.type, after, limit - len(examined))
        matched = changed = 0
        for position in examined:
            record = self._records.get(position.job_id)
            if record is None or not job_filter.matches(record.job):
                continue
            matched += 1
            if _changes(action, record.job):
                self._apply(action, record)
                changed += 1
        more = len(examined) == limit and limit > 0
        following = encode_bulk_cursor(0, encode_cursor(examined[-1])) if more else ""
        return BulkResult(matched=matched, changed=changed, next_cursor=following)

    def _existing(self, job_id: str) -> _Record:
        record = self._records.get(job_id)
        if record is None:
            raise JobNotFound(job_id)
        return record

    def _apply(self, action: BulkAction, record: _Record) -> None:
        if action is BulkAction.RETRY:
            self._retry_now(record)
        elif action is BulkAction.DELETE:
            self._delete_now(record)
        else:
            self._cancel_now(record)

    def _retry_now(self, record: _Record) -> Job:
        job = record.job
        if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobNotRetryable(job.id, job.status.name)
        transition(job.status, Event.REVIVE)
        now = self._clock.now_ms()
        # A fresh attempt budget; the last error stays readable until the next run.
        record.job = replace(
            job,
            status=JobStatus.PENDING,
            execution_time_ms=now,
            updated_at=now,
            attempts=0,
            result=None,
            cancel_requested=False,
        )
        record.confirmed = False
        record.unconfirmed_expiries = 0
        self._push_pending(job, now)
        # Counted as enqueued, as Redis's retry_job does: enqueued minus
        # finished stays the queue's depth.
        self._count("enqueued", job.type)
        self._wake()
        self._notify(job.id)
        return record.job

    def _delete_now(self, record: _Record) -> Job:
        job = record.job
        if not job.status.is_terminal:
            raise JobNotFinished(job.id, job.status.name)
        del self._records[job.id]
        key = idempotency_slot(job)
        if key is not None and self._keys.get(key) == job.id:
            del self._keys[key]
        # Its retention entry in ``_finished`` finds no record later: nothing to undo.
        self._notify(job.id)
        return job

    def _cancel_now(self, record: _Record) -> None:
        job = record.job
        now = self._clock.now_ms()
        if job.status is JobStatus.PENDING:
            self._finish(record, JobStatus.CANCELLED, now)
        elif job.status is JobStatus.RUNNING and not job.cancel_requested:
            record.job = replace(job, cancel_requested=True, updated_at=now)
            self._notify(job.id)
            for inbox in self._cancel_inboxes:
                inbox.put_nowait(job.id)


def _changes(action: BulkAction, job: Job) -> bool:
    """Whether ``action`` changes ``job``: a RUNNING job already asked to cancel is not.

    A repeated bulk cancel flags nothing new, and Redis's cancel_job answers
    it as unchanged too, so both stores count it matched, not changed.
    """
    if action is BulkAction.CANCEL and job.status is JobStatus.RUNNING and job.cancel_requested:
        return False
    return action.applies_to(job.status)
