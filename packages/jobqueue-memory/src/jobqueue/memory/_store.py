"""A complete JobStore held in process memory.

Every method runs without awaiting between its reads and writes, so on one
event loop each is atomic, as the port requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import secrets
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, replace

from jobqueue.domain import (
    MAX_UNCONFIRMED_DELIVERIES,
    CapacityExceeded,
    Clock,
    Event,
    InvalidJob,
    Job,
    JobAlreadyFinished,
    JobNotFound,
    JobPage,
    JobQuery,
    JobStatus,
    Lease,
    LeaseState,
    ListPosition,
    Outcome,
    OutcomeKind,
    QueueStats,
    SystemClock,
    TypeStats,
    decode_cursor,
    encode_cursor,
    resolve,
    transition,
)

_OUTCOME_EVENTS = {
    OutcomeKind.COMPLETE: Event.COMPLETE,
    OutcomeKind.RETRY: Event.RETRY,
    OutcomeKind.FAIL: Event.FAIL,
    OutcomeKind.RELEASE: Event.RELEASE,
    OutcomeKind.CANCELLED: Event.ABORT,
}


MAX_STATS_TYPES = 1_000
"""Most types one ``stats`` call counts, as in the Redis store."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryStoreSettings:
    """Bounds of the in-memory store.

    ``max_jobs`` caps how many jobs (of any status) it holds, so a runaway
    producer gets RESOURCE_EXHAUSTED instead of exhausting the server's memory.
    """

    retention_ms: int = 24 * 3600 * 1000
    max_jobs: int = 1_000_000


@dataclass(slots=True)
class _Record:
    job: Job
    token: str = ""
    deadline_ms: int = 0
    # The lease's attempt counts for good once a renew or settle confirms it.
    confirmed: bool = False
    unconfirmed_expiries: int = 0


class MemoryJobStore:
    """The embedded default store: same semantics as Redis, nothing survives a restart."""

    def __init__(
        self, settings: MemoryStoreSettings | None = None, *, clock: Clock | None = None
    ) -> None:
        self._settings = settings or MemoryStoreSettings()
        self._clock = clock or SystemClock()
        self._records: dict[str, _Record] = {}
        self._pending: dict[str, list[tuple[int, str]]] = {}
        self._running: dict[str, int] = {}
        self._finished: deque[tuple[int, str]] = deque()
        self._keys: dict[str, str] = {}
        self._batches: dict[str, tuple[int, list[str]]] = {}
        self._batch_expiry: deque[tuple[int, str]] = deque()
        self._rotation = 0
        self._sweep_locked_until = 0
        self._changed = asyncio.Event()
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._cancel_inboxes: set[asyncio.Queue[str]] = set()

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
        for job in jobs:
            if job.status is not JobStatus.PENDING:
                raise InvalidJob("status", "new jobs must be PENDING")
            key = job.idempotency_key
            if key is not None:
                if key in batch_keys:
                    stored.append(batch_keys[key])
                    continue
                existing_id = self._keys.get(key)
                if existing_id is not None and existing_id in self._records:
                    stored.append(self._records[existing_id].job)
                    continue
                batch_keys[key] = job
            stored.append(job)
        for job in stored:
            if job.id in self._records:
                continue
            self._records[job.id] = _Record(job)
            if job.idempotency_key is not None:
                self._keys[job.idempotency_key] = job.id
            heapq.heappush(self._pending.setdefault(job.type, []), (job.execution_time_ms, job.id))
        if batch_key is not None:
            expires_at = self._clock.now_ms() + self._settings.retention_ms
            self._batches[batch_key] = (expires_at, [job.id for job in stored])
            self._batch_expiry.append((expires_at, batch_key))
        self._wake()
        return stored

    async def get(self, job_id: str) -> Job | None:
        self._purge()
        record = self._records.get(job_id)
        return record.job if record else None

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

    # -- workers ---------------------------------------------------------------

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Lease]:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + wait_ms / 1000
        while True:
            self._purge()
            leases = self._claim_now(types, limit, lease_ms)
            remaining = give_up_at - loop.time()
            if leases or remaining <= 0 or limit <= 0:
                return leases
            next_due = self._next_due(types)
            if next_due is not None:
                remaining = min(remaining, max(next_due - self._clock.now_ms(), 0) / 1000)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(remaining, 0.001))

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        now = self._clock.now_ms()
        results: list[bool] = []
        for outcome in outcomes:
            record = self._live_lease(outcome.job_id, outcome.token)
            if record is None:
                results.append(False)
                continue
            event = resolve(record.job, _OUTCOME_EVENTS[outcome.kind])
            status = transition(record.job.status, event)
            job = record.job
            if outcome.kind is OutcomeKind.RELEASE and status is JobStatus.PENDING:
                # Handed back untried: the attempt it was claimed for does not count.
                job = replace(job, attempts=max(job.attempts - 1, 0))
            if outcome.error:
                job = replace(job, last_error=outcome.error)
            record.unconfirmed_expiries = 0
            if status is JobStatus.PENDING:
                due = now + (outcome.retry_delay_ms or 0)
                record.job = job
                self._requeue(record, due, now)
            else:
                record.job = (
                    replace(job, result=outcome.result) if status is JobStatus.COMPLETED else job
                )
                self._finish(record, status, now)
            results.append(True)
        self._wake()
        return results

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        now = self._clock.now_ms()
        states: list[LeaseState] = []
        for job_id, token in leases:
            record = self._live_lease(job_id, token)
            if record is None:
                states.append(LeaseState.LOST)
                continue
            record.deadline_ms = now + lease_ms
            record.confirmed = True
            record.unconfirmed_expiries = 0
            self._running[job_id] = record.deadline_ms
            states.append(
                LeaseState.CANCEL_REQUESTED if record.job.cancel_requested else LeaseState.ACTIVE
            )
        return states

    async def requeue_expired(self, *, limit: int = 1_000, lock_ms: int = 0) -> int:
        now = self._clock.now_ms()
        if lock_ms > 0:
            if now < self._sweep_locked_until:
                return 0
            self._sweep_locked_until = now + lock_ms
        expired = sorted(
            (deadline, job_id) for job_id, deadline in self._running.items() if deadline <= now
        )[:limit]
        for _, job_id in expired:
            record = self._records[job_id]
            if (
                not record.confirmed
                and not record.job.cancel_requested
                and record.unconfirmed_expiries < MAX_UNCONFIRMED_DELIVERIES
            ):
                # Never confirmed: the claim's reply may never have reached a
                # worker, so the job may never have run. Give the attempt back.
                record.unconfirmed_expiries += 1
                record.job = replace(record.job, attempts=max(record.job.attempts - 1, 0))
                self._requeue(record, now, now)
                continue
            event = resolve(record.job, Event.EXPIRE)
            status = transition(record.job.status, event)
            if status is JobStatus.PENDING:
                self._requeue(record, now, now)
            else:
                if status is JobStatus.FAILED:
                    record.job = replace(record.job, last_error="lease expired on the last attempt")
                self._finish(record, status, now)
        if expired:
            self._wake()
        return len(expired)

    # -- operators -------------------------------------------------------------

    async def list_jobs(self, query: JobQuery) -> JobPage:
        self._purge()
        after = decode_cursor(query.cursor)
        matches = sorted(
            key
            for key in (self._sort_key(record) for record in self._records.values())
            if (query.status is None or key.status is query.status)
            and (query.type is None or key.type == query.type)
            and (after is None or key > after)
        )
        page = matches[: max(query.limit, 0)]
        more = len(matches) > len(page) and bool(page)
        return JobPage(
            jobs=[self._records[key.job_id].job for key in page],
            next_cursor=encode_cursor(page[-1]) if more else "",
        )

    async def stats(self) -> QueueStats:
        self._purge()
        now = self._clock.now_ms()
        counts: dict[str, dict[str, int]] = {}
        for record in self._records.values():
            job = record.job
            row = counts.setdefault(job.type, {})
            if job.status is JobStatus.PENDING:
                name = "pending" if job.execution_time_ms <= now else "scheduled"
            else:
                name = job.status.name.lower()
            row[name] = row.get(name, 0) + 1
        names = sorted(counts)
        return QueueStats(
            types=[TypeStats(type=name, **counts[name]) for name in names[:MAX_STATS_TYPES]],
            omitted_types=max(len(names) - MAX_STATS_TYPES, 0),
        )

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        self._purge()
        record = self._records.get(job_id)
        if record is None:
            raise JobNotFound(job_id)
        changed = asyncio.Event()
        self._watchers.setdefault(job_id, set()).add(changed)
        try:
            last: Job | None = None
            while True:
                changed.clear()
                current = self._records.get(job_id)
                if current is None:
                    return
                if current.job != last:
                    last = current.job
                    yield last
                    if last.status.is_terminal:
                        return
                await changed.wait()
        finally:
            watchers = self._watchers.get(job_id)
            if watchers is not None:
                watchers.discard(changed)
                if not watchers:
                    del self._watchers[job_id]

    async def cancellations(self) -> AsyncIterator[str]:
        """Ids of RUNNING jobs whose cancel was requested, as ``cancel`` flags them.

        Each open iterator has an inbox of its own, so every one sees every
        request made while it is open, however slowly it is read.
        """
        inbox: asyncio.Queue[str] = asyncio.Queue()
        self._cancel_inboxes.add(inbox)
        try:
            while True:
                yield await inbox.get()
        finally:
            self._cancel_inboxes.discard(inbox)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._wake()

    # -- internals -------------------------------------------------------------

    def _claim_now(self, types: Sequence[str], limit: int, lease_ms: int) -> list[Lease]:
        now = self._clock.now_ms()
        order = list(dict.fromkeys(types))
        if not order:
            return []
        # Start each claim at the next type in turn and give every type an
        # equal share per round, so a flooded type cannot starve the others.
        self._rotation = (self._rotation + 1) % len(order)
        active = order[self._rotation :] + order[: self._rotation]
        leases: list[Lease] = []
        while len(leases) < limit and active:
            still: list[str] = []
            share = -(-(limit - len(leases)) // len(active))
            for job_type in active:
                want = min(share, limit - len(leases))
                if want <= 0:
                    break
                taken = 0
                while taken < want:
                    record = self._pop_due(job_type, now)
                    if record is None:
                        break
                    taken += 1
                    leases.append(self._lease(record, now, lease_ms))
                if taken == want:
                    still.append(job_type)
            active = still
        return leases

    def _lease(self, record: _Record, now: int, lease_ms: int) -> Lease:
        transition(record.job.status, Event.CLAIM)
        record.job = replace(
            record.job,
            status=JobStatus.RUNNING,
            attempts=record.job.attempts + 1,
            updated_at=now,
        )
        record.token = secrets.token_hex(8)
        record.deadline_ms = now + lease_ms
        record.confirmed = False
        self._running[record.job.id] = record.deadline_ms
        self._notify(record.job.id)
        return Lease(record.job, record.token, record.deadline_ms)

    def _pop_due(self, job_type: str, now: int) -> _Record | None:
        heap = self._pending.get(job_type)
        while heap:
            due, job_id = heap[0]
            record = self._records.get(job_id)
            if (
                record is None
                or record.job.status is not JobStatus.PENDING
                or record.job.execution_time_ms != due
            ):
                heapq.heappop(heap)  # a stale entry: cancelled, claimed or rescheduled
                continue
            if due > now:
                return None
            heapq.heappop(heap)
            return record
        return None

    def _next_due(self, types: Iterable[str]) -> int | None:
        dues = []
        for job_type in types:
            heap = self._pending.get(job_type)
            if heap:
                dues.append(heap[0][0])
        return min(dues) if dues else None

    def _live_lease(self, job_id: str, token: str) -> _Record | None:
        """The record whose lease this is, unless the token is stale or the deadline passed."""
        record = self._records.get(job_id)
        if (
            record is None
            or record.job.status is not JobStatus.RUNNING
            or record.token != token
            or record.deadline_ms <= self._clock.now_ms()
        ):
            return None
        return record

    def _requeue(self, record: _Record, due: int, now: int) -> None:
        job = record.job
        record.job = replace(job, status=JobStatus.PENDING, execution_time_ms=due, updated_at=now)
        record.token = ""
        record.deadline_ms = 0
        self._running.pop(job.id, None)
        heapq.heappush(self._pending.setdefault(job.type, []), (due, job.id))
        self._notify(job.id)

    def _finish(self, record: _Record, status: JobStatus, now: int) -> Job:
        job = replace(record.job, status=status, updated_at=now)
        record.job = job
        record.token = ""
        record.deadline_ms = 0
        self._running.pop(job.id, None)
        self._finished.append((now + self._settings.retention_ms, job.id))
        self._notify(job.id)
        return job

    def _purge(self) -> None:
        now = self._clock.now_ms()
        # The clock never goes back, so batch keys expire in the order stored.
        while self._batch_expiry and self._batch_expiry[0][0] <= now:
            _, batch_key = self._batch_expiry.popleft()
            known = self._batches.get(batch_key)
            if known is not None and known[0] <= now:
                del self._batches[batch_key]
        while self._finished and self._finished[0][0] <= now:
            _, job_id = self._finished.popleft()
            record = self._records.pop(job_id, None)
            if record is not None:
                key = record.job.idempotency_key
                if key is not None and self._keys.get(key) == job_id:
                    del self._keys[key]
                self._notify(job_id)

    def _sort_key(self, record: _Record) -> ListPosition:
        job = record.job
        if job.status is JobStatus.PENDING:
            position = job.execution_time_ms
        elif job.status is JobStatus.RUNNING:
            position = record.deadline_ms
        else:
            position = job.updated_at
        return ListPosition(job.status, job.type, position, job.id)

    def _wake(self) -> None:
        self._changed.set()

    def _notify(self, job_id: str) -> None:
        for changed in self._watchers.get(job_id, ()):
            changed.set()
