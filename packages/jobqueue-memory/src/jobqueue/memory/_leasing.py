"""The workers' operations of the in-memory store: claim, settle, renew, sweep, cancellations."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from itertools import islice

from jobqueue.domain import (
    MAX_UNCONFIRMED_DELIVERIES,
    Event,
    JobStatus,
    Lease,
    LeaseState,
    Outcome,
    OutcomeKind,
    ProgressReport,
    resolve,
    transition,
)

from ._core import _Record
from ._gates import _GatesMixin
from ._unique import release_lock

# Keys of one type a claim visits at most beyond one per job it takes, as on
# Redis (claim.lua's KEY_VISITS): held keys are set aside, not visited again.
KEY_VISITS = 64

_OUTCOME_EVENTS = {
    OutcomeKind.COMPLETE: Event.COMPLETE,
    OutcomeKind.RETRY: Event.RETRY,
    OutcomeKind.FAIL: Event.FAIL,
    OutcomeKind.RELEASE: Event.RELEASE,
    OutcomeKind.CANCELLED: Event.ABORT,
}


class _LeasingMixin(_GatesMixin):
    """Leases: handed out fairly across types, renewed, settled or expired."""

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
                if outcome.kind is not OutcomeKind.RELEASE:
                    self._count("retried", job.type)
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
            self._count("leases_expired", record.job.type)
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

    async def report_progress(self, reports: Sequence[ProgressReport]) -> list[bool]:
        """Progress on jobs whose lease is held (jobqueue.domain.ProgressStore); a watch event."""
        applied: list[bool] = []
        for report in reports:
            record = self._live_lease(report.job_id, report.token)
            if record is not None:
                record.job = replace(
                    record.job, progress=report.fraction, progress_message=report.message
                )
                self._notify(report.job_id)
            applied.append(record is not None)
        return applied

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

    def _claim_now(self, types: Sequence[str], limit: int, lease_ms: int) -> list[Lease]:
        now = self._clock.now_ms()
        # A paused type is skipped here, in the step that leases (see _gates.py).
        order = [t for t in dict.fromkeys(types) if t not in self._paused]
        if not order:
            return []
        # Start each claim at the next type in turn and give every type an
        # equal share per round, so a flooded type cannot starve the others.
        self._rotation = (self._rotation + 1) % len(order)
        active = order[self._rotation :] + order[: self._rotation]
        # What each type's limits let this claim start (None: no limit), in the
        # same step: a limited job is not claimed, rather than handed back.
        room = {job_type: self._allowance(job_type, now) for job_type in active}
        active = [job_type for job_type in active if room[job_type] != 0]
        leases: list[Lease] = []
        while len(leases) < limit and active:
            still: list[str] = []
            share = -(-(limit - len(leases)) // len(active))
            for job_type in active:
                want = min(share, limit - len(leases))
                if want <= 0:
                    break
                left = room[job_type]
                cap = want if left is None else min(want, left)
                taken = 0
                # Keys of the type this round may visit, as on Redis (claim.lua).
                visits = [cap + KEY_VISITS]
                while taken < cap:
                    record = self._pop_due(job_type, now, visits)
                    if record is None:
                        break
                    taken += 1
                    leases.append(self._lease(record, now, lease_ms))
                self._started(job_type, now, taken)
                if left is not None:
                    room[job_type] = left - taken
                if taken == want and room[job_type] != 0:
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
        self._slot_taken(record.job)
        release_lock(self._unique_locks, record.job, claimed=True)
        self._notify(record.job.id)
        return Lease(record.job, record.token, record.deadline_ms)

    def _pop_due(self, job_type: str, now: int, visits: list[int]) -> _Record | None:
        """The type's next due job: by key in turns when it has keyed jobs, else by priority.

        Keys in turn, least recently served first; '' is the lane of the jobs
        without a key. A key at its per-key limit, or whose head is not due,
        is set aside (out of the turns) until it may start, so no claim visits
        it meanwhile; ``visits`` is what this claim may still visit.
        """
        turns = self._turns.get(job_type)
        if turns is None:
            return self._pop_plain(job_type, now)
        self._unpark_due(job_type, now)
        keyed = self._keyed.get(job_type, {})
        for key in list(islice(turns, max(visits[0], 0) + 1)):
            if key == "":
                # Not charged (nor counted): visited once per pop, cap + 1 times.
                record = self._pop_plain(job_type, now)
                if record is None:
                    continue  # like a key, the lane goes back only when served
                turns.move_to_end("")
                return record
            if visits[0] <= 0:
                break
            visits[0] -= 1
            self._key_visits += 1
            heap = keyed.get(key)
            if not heap:
                del turns[key]
                keyed.pop(key, None)
                continue
            if not self._key_open(job_type, key, now):
                self._set_aside(job_type, key, self._key_limited_until(job_type, key))
                continue
            record = self._pop_head(heap, now)
            if record is None:
                if heap:
                    self._set_aside(job_type, key, heap[0][0])
                else:
                    del turns[key]
                    del keyed[key]
                continue
            if heap:
                turns.move_to_end(key)
            else:
                del turns[key]
                del keyed[key]
            self._key_started(job_type, key, now)
            return record
        if len(turns) == 1 and "" in turns and not self._aside.get(job_type):
            del self._turns[job_type]
            self._keyed.pop(job_type, None)
        return None

    def _pop_plain(self, job_type: str, now: int) -> _Record | None:
        """The type's next due job without a key: the highest priority first, FIFO within one."""
        levels = self._levels.get(job_type)
        if not levels:
            return self._pop_head(self._pending.get(job_type), now)
        for priority in sorted({*levels, 0}, reverse=True):
            heap = self._pending.get(job_type) if priority == 0 else levels[priority]
            record = self._pop_head(heap, now)
            if record is not None:
                return record
            if priority != 0 and not heap:
                del levels[priority]
        if not levels:
            del self._levels[job_type]
        return None

    def _pop_head(self, heap: list[tuple[int, str]] | None, now: int) -> _Record | None:
        """Pop the head of one (due, id) heap if it is due, dropping stale entries."""
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
        """When a claim of ``types`` may find work: the earliest due job a gate lets through.

        A type held by its concurrency limit has none until a job settles
        (which wakes every idle claim); one held by its rate limit, when its
        oldest start leaves the window.
        """
        now = self._clock.now_ms()
        dues = []
        for job_type in types:
            if job_type in self._paused:
                continue
            if self._allowance(job_type, now) == 0:
                until = self._limited_until(job_type, now)
                if until is not None:
                    dues.append(until)
                continue
            heaps = [self._pending.get(job_type), *self._levels.get(job_type, {}).values()]
            dues += [heap[0][0] for heap in heaps if heap]
            turns = self._turns.get(job_type)
            if turns is None:
                continue
            if len(turns) > KEY_VISITS + 1:
                # More keys than a claim visits: the last claim reached its bound.
                dues.append(now)
                continue
            keyed = self._keyed.get(job_type, {})
            for key in turns:
                if (heap := keyed.get(key)) and key:
                    # A held key not yet set aside: the next claim sets it aside.
                    dues.append(heap[0][0] if self._key_open(job_type, key, now) else now)
            # Keys set aside for a time (a window, a head); one held for a
            # slot waits for a settle or the sweep, which wake every claim.
            if aside_due := self._aside_due.get(job_type):
                dues.append(aside_due[0][0])
        return min(dues) if dues else None
