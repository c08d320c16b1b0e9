"""A complete JobStore held in process memory.

Every method runs without awaiting between its reads and writes, so on one
event loop each is atomic, as the port requires. The state and shared steps
are in ``_core``, the workers' operations in ``_leasing``, the reads in
``_reading``; this module is the face: producers, cancel, life cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from jobqueue.domain import (
    CapacityExceeded,
    Event,
    InvalidJob,
    Job,
    JobAlreadyFinished,
    JobNotFound,
    JobStatus,
    OnConflict,
    UniqueConflict,
    transition,
)

from ._admin import _AdminMixin
from ._core import _Record
from ._counters import _CountersMixin
from ._gates import _GatesMixin
from ._leasing import _LeasingMixin
from ._presence import _PresenceMixin
from ._reading import _ReadingMixin
from ._unique import idempotency_slot, lock_holder, slot, take_lock


class MemoryJobStore(
    _PresenceMixin, _AdminMixin, _LeasingMixin, _ReadingMixin, _GatesMixin, _CountersMixin
):
    """The embedded default store: same semantics as Redis, nothing survives a restart."""

    # -- producers -------------------------------------------------------------

    async def add(self, jobs: Sequence[Job], *, batch_key: str | None = None) -> list[Job]:
        self._purge()
        if batch_key is not None:
            known = self._batches.get(batch_key)
            if known is not None and all(job_id in self._records for job_id in known[1]):
                return [self._records[job_id].job for job_id in known[1]]
        fresh = [job for job in jobs if job.id not in self._records]
        if len(self._records) + len(fresh) > self._settings.max_jobs:
            raise CapacityExceeded(
                f"the in-memory store holds at most {self._settings.max_jobs} jobs"
            )
        stored: list[Job] = []
        batch_keys: dict[str, Job] = {}
        now = self._clock.now_ms()
        batch_unique: dict[str, Job] = {}
        replaced: list[str] = []
        for job in jobs:
            if job.status is not JobStatus.PENDING:
                raise InvalidJob("status", "new jobs must be PENDING")
            key = idempotency_slot(job)
            if key is not None:
                if key in batch_keys:
                    stored.append(batch_keys[key])
                    continue
                existing_id = self._keys.get(key)
                if existing_id is not None and existing_id in self._records:
                    stored.append(self._records[existing_id].job)
                    continue
            holder = self._unique_verdict(job, now, batch_unique, replaced)
            if holder is not None:
                stored.append(holder)
                continue
            if key is not None:
                batch_keys[key] = job
            stored.append(job)
        for job in stored:
            if job.id in self._records:
                continue
            self._records[job.id] = _Record(job)
            self._count("enqueued", job.type)
            key = idempotency_slot(job)
            if key is not None:
                self._keys[key] = job.id
            take_lock(self._unique_locks, job, now)
            self._push_pending(job, job.execution_time_ms)
        for holder_id in replaced:
            self._replaced(holder_id, now)
        stored = [self._records[job.id].job for job in stored]
        if batch_key is not None:
            expires_at = self._clock.now_ms() + self._settings.retention_ms
            self._batches[batch_key] = (expires_at, [job.id for job in stored])
            self._batch_expiry.append((expires_at, batch_key))
        self._wake()
        return stored

    def _unique_verdict(
        self, job: Job, now: int, batch_unique: dict[str, Job], replaced: list[str]
    ) -> Job | None:
        """The holder to return in the job's place, or None to store it; raises on a reject.

        Decided before anything is written, so a rejected job rejects the whole
        batch with no change. Jobs earlier in the batch hold keys like stored ones.
        """
        rule = job.unique
        if rule is None:
            return None
        held = slot(job.type, rule.key)
        holder = batch_unique.get(held)
        if holder is None:
            record = self._records.get(lock_holder(self._unique_locks, held, now) or "")
            holder = record.job if record is not None else None
        if holder is not None:
            if rule.on_conflict is OnConflict.RETURN_EXISTING:
                return holder
            if rule.on_conflict is not OnConflict.REPLACE or holder.status is not JobStatus.PENDING:
                raise UniqueConflict(rule.key, holder.id)
            replaced.append(holder.id)
        batch_unique[held] = job
        return None

    def _replaced(self, holder_id: str, now: int) -> None:
        """A PENDING holder that a REPLACE took the key from ends CANCELLED, saying by whom."""
        record = self._records[holder_id]
        key = slot(record.job.type, record.job.unique_key or "")
        successor = self._unique_locks[key].job_id if key in self._unique_locks else "?"
        record.job = replace(record.job, last_error=f"replaced by job {successor}")
        self._finish(record, JobStatus.CANCELLED, now)

    async def cancel(self, job_id: str) -> Job:
        self._purge()
        record = self._records.get(job_id)
        if record is None:
            raise JobNotFound(job_id)
        job = record.job
        if job.status.is_terminal:
            raise JobAlreadyFinished(job_id, job.status.name)
        now = self._clock.now_ms()
        if job.status is JobStatus.PENDING:
            job = self._finish(record, JobStatus.CANCELLED, now)
        elif not job.cancel_requested:
            transition(job.status, Event.CANCEL)
            job = replace(job, cancel_requested=True, updated_at=now)
            record.job = job
            self._notify(job_id)
            for inbox in self._cancel_inboxes:
                inbox.put_nowait(job_id)
        return job

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._wake()
