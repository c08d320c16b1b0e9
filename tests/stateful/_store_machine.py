"""The store machine: random operation sequences, each step checked against the model.

The rules and invariants live here, the model in _store_model.py, and the
per-store test entry points (memory, Redis, Redis Cluster) in test_store_machine.py;
test_unique_machine.py extends this machine with unique jobs.

The memory store runs on a ManualClock the machine moves, so every time is
exact and leases, due times and retention cross their boundaries at random.
Redis takes its time from TIME, which no test can move, so its machine reads
Redis's clock around each call and keeps every time far from any boundary a
step could straddle: jobs are due hours ago, at once or in an hour; leases
last an hour or 1 ms, and a 1 ms lease is waited out before the next step,
so it is already expired whatever runs next; retention is an hour, or, in a
second run, 1 ms, waited out in the same way. Times the store picks itself (a
requeue's due time) are known only within the bounds of the call, so the
model keeps them as bounds until the next check reads them back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from jobqueue.domain import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_UNCONFIRMED_DELIVERIES,
    AdminStore,
    Job,
    JobAlreadyFinished,
    JobNotFinished,
    JobNotFound,
    JobNotRetryable,
    JobStatus,
    JobStore,
    LeaseState,
    Outcome,
    OutcomeKind,
    UuidV7Generator,
)
from jobqueue.redis._shards import shard_of_type, with_shard
from tests.stateful._store_model import Model, ModelJob
from tests.stateful._time import HOUR_MS, ManualTime, Time

TYPES = ("a", "b", "c")
T = TypeVar("T")


class StoreMachine(RuleBasedStateMachine):
    """Subclasses name the adapter under test, and its time, with ``make_store``."""

    make_store: Callable[[], tuple[JobStore, Time]]
    exact_claim_order = True
    """False for a store over several shards: its claims keep fairness across shards
    in their own order (``Model.claim_any_fair`` checks what still holds)."""
    shards = 1
    """The store's virtual shards: ids name their type's shard, as a sharded ``add`` makes them."""

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        # Short leases end by this instant; no store call starts before it passed.
        self.horizon = 0
        # The last call that stamped due times ended by this instant.
        self.stamped = 0
        self.store, self.time = type(self).make_store()
        self.model = Model(self.time.retention_ms)
        self.ids = UuidV7Generator()
        # Jobs an operator deleted (the ``delete`` rule): gone from the model, and the store.
        self.deleted: list[str] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def now(self) -> int:
        return self.time.now()

    def timed(self, call: Coroutine[Any, Any, T], *, stamps: bool = False) -> tuple[int, T, int]:
        """Run one store call between two readings of the store's clock.

        On Redis it starts only once every short lease has lapsed and, if it
        may stamp due times (a requeue's, a job due at once), in a later
        millisecond than the last call that did. Stamped due times then grow
        strictly from step to step, so jobs queue in the same order in every
        run of an example however fast it runs, as Hypothesis needs to replay
        and shrink it. The waits are rare: a step's check takes over 1 ms.
        """
        edge = max(self.horizon, self.stamped) if stamps else self.horizon
        before = self.time.now()
        if before <= edge:
            self.time.wait_past(edge)
            before = self.time.now()
        result = self.run(call)
        after = self.time.now()
        if stamps:
            self.stamped = after
        return before, result, after

    def teardown(self) -> None:
        self.run(self.store.close())
        self.time.close()
        self.runner.close()

    def outlive(self, after: int, lease_ms: int) -> None:
        """Make a short lease, set by a call that returned at ``after``, lapse before the next."""
        if not self.time.manual and lease_ms < HOUR_MS:
            self.horizon = max(self.horizon, after + lease_ms)

    def running(self) -> bool:
        return any(j.status is JobStatus.RUNNING for j in self.model.jobs.values())

    def pick(self, index: int, status: JobStatus) -> ModelJob:
        """A job of a status that never expires (not a finished one)."""
        assert not status.is_terminal
        jobs = [j for j in self.model.jobs.values() if j.status is status]
        return jobs[index % len(jobs)]

    @rule(
        specs=st.lists(
            st.tuples(
                st.sampled_from(TYPES),
                st.integers(0, 3),
                st.sampled_from([None, 1, 2, 3]),
                st.sampled_from([0, 0, 1, -1, 7]),
            ),
            min_size=1,
            max_size=3,
        )
    )
    def enqueue(self, specs: list[tuple[str, int, int | None, int]]) -> None:
        now = self.now()
        jobs = [
            Job(
                id=with_shard(self.ids.new_id(), shard_of_type(job_type, self.shards), self.shards),
                type=job_type,
                payload=b"p",
                status=JobStatus.PENDING,
                execution_time_ms=now + self.time.delays[delay],
                created_at=now,
                updated_at=now,
                max_attempts=max_attempts,
                priority=priority,
            )
            for job_type, delay, max_attempts, priority in specs
        ]
        due_at_once = any(job.execution_time_ms == now for job in jobs)
        _, stored, after = self.timed(self.store.add(jobs), stamps=due_at_once)
        assert [job.id for job in stored] == [job.id for job in jobs]
        for job, kept in zip(jobs, stored, strict=True):
            due = job.execution_time_ms
            if due == now:  # due at once: at the store's now
                assert now <= kept.execution_time_ms <= after
                due = kept.execution_time_ms
            assert kept.execution_time_ms == due
            model_job = ModelJob(job.id, job.type, due, due, job.max_attempts)
            model_job.priority = job.priority
            self.model.jobs[job.id] = model_job

    @rule(
        types=st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True),
        limit=st.integers(1, 4),
        lease=st.integers(0, 2),
    )
    def claim(self, types: list[str], limit: int, lease: int) -> None:
        lease_ms = self.time.leases[lease]
        now, leases, after = self.timed(self.store.claim(types, limit=limit, lease_ms=lease_ms))
        ids = [lease.job.id for lease in leases]
        if self.exact_claim_order:
            expected = self.model.claim(types, limit, now)
            assert ids == [job.id for job in expected]
        else:
            expected = self.model.claim_any_fair(types, limit, now, ids)
        for lease_, job in zip(leases, expected, strict=True):
            job.status, job.attempts = JobStatus.RUNNING, job.attempts + 1
            assert now + lease_ms <= lease_.deadline_ms <= after + lease_ms
            job.token, job.deadline, job.confirmed = lease_.token, lease_.deadline_ms, False
            assert lease_.job.attempts == job.attempts
        self.outlive(after, lease_ms)

    @precondition(running)
    @rule(
        index=st.integers(0, 1_000),
        kind=st.sampled_from(list(OutcomeKind)),
        delay=st.integers(0, 1),
    )
    def settle(self, index: int, kind: OutcomeKind, delay: int) -> None:
        job = self.pick(index, JobStatus.RUNNING)
        retry_delay = self.time.retry_delays[delay]
        outcome = Outcome(
            job_id=job.id,
            token=job.token,
            kind=kind,
            result=b"r" if kind is OutcomeKind.COMPLETE else None,
            error="e" if kind in (OutcomeKind.RETRY, OutcomeKind.FAIL) else None,
            retry_delay_ms=retry_delay if kind is OutcomeKind.RETRY else None,
        )
        requeues = kind in (OutcomeKind.RETRY, OutcomeKind.RELEASE) and not job.cancel_requested
        now, applied, after = self.timed(self.store.settle([outcome]), stamps=requeues)
        held = job.deadline > now
        assert applied == [held]
        if not held:  # the deadline passed: refused, and nothing changes
            return
        job.old_tokens.append(job.token)
        job.unconfirmed_expiries = 0
        if kind is OutcomeKind.COMPLETE:
            self.model.finish(job, JobStatus.COMPLETED, now, after)
        elif kind is OutcomeKind.FAIL:
            self.model.finish(job, JobStatus.FAILED, now, after)
        elif kind is OutcomeKind.CANCELLED or job.cancel_requested:
            self.model.finish(job, JobStatus.CANCELLED, now, after)
        else:
            if kind is OutcomeKind.RELEASE:
                job.attempts -= 1
            extra = retry_delay if kind is OutcomeKind.RETRY else 0
            self.model.requeue(job, now + extra, after + extra)

    @precondition(lambda self: any(j.old_tokens for j in self.model.jobs.values()))
    @rule(index=st.integers(0, 1_000), kind=st.sampled_from(list(OutcomeKind)))
    def settle_with_a_stale_token(self, index: int, kind: OutcomeKind) -> None:
        stale = [j for j in self.model.jobs.values() if j.old_tokens]
        job = stale[index % len(stale)]
        outcome = Outcome(job_id=job.id, token=job.old_tokens[-1], kind=kind)
        assert self.run(self.store.settle([outcome])) == [False]

    @precondition(running)
    @rule(index=st.integers(0, 1_000), lease=st.integers(0, 2))
    def renew(self, index: int, lease: int) -> None:
        lease_ms = self.time.leases[lease]
        job = self.pick(index, JobStatus.RUNNING)
        now, states, after = self.timed(self.store.renew([(job.id, job.token)], lease_ms=lease_ms))
        if job.deadline <= now:
            expected = LeaseState.LOST
        elif job.cancel_requested:
            expected = LeaseState.CANCEL_REQUESTED
        else:
            expected = LeaseState.ACTIVE
        assert states == [expected]
        if expected is not LeaseState.LOST:
            job.deadline, job.confirmed, job.unconfirmed_expiries = now + lease_ms, True, 0
            self.outlive(after, lease_ms)

    @precondition(lambda self: bool(self.model.jobs))
    @rule(index=st.integers(0, 1_000))
    def cancel(self, index: int) -> None:
        jobs = list(self.model.jobs.values())
        job = jobs[index % len(jobs)]
        now = self.now()
        if job.id not in self.model.visible(now):
            with pytest.raises(JobNotFound):
                self.run(self.store.cancel(job.id))
        elif job.status.is_terminal:
            with pytest.raises(JobAlreadyFinished):
                self.run(self.store.cancel(job.id))
        else:
            now, result, after = self.timed(self.store.cancel(job.id))
            if job.status is JobStatus.PENDING:
                self.model.finish(job, JobStatus.CANCELLED, now, after)
            else:
                job.cancel_requested = True
            assert (result.status, result.cancel_requested) == (job.status, job.cancel_requested)

    def admin(self) -> AdminStore:
        assert isinstance(self.store, AdminStore)
        return self.store

    @precondition(lambda self: bool(self.model.jobs))
    @rule(index=st.integers(0, 1_000))
    def retry(self, index: int) -> None:
        """An operator's retry: a FAILED or CANCELLED job PENDING again, due now, attempts 0."""
        jobs = list(self.model.jobs.values())
        job = jobs[index % len(jobs)]
        now = self.now()
        if job.id not in self.model.visible(now):
            with pytest.raises(JobNotFound):
                self.run(self.admin().retry(job.id))
        elif job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            with pytest.raises(JobNotRetryable):
                self.run(self.admin().retry(job.id))
        else:
            now, result, after = self.timed(self.admin().retry(job.id), stamps=True)
            assert now <= result.execution_time_ms <= after
            self.model.requeue(job, result.execution_time_ms, result.execution_time_ms)
            job.attempts, job.cancel_requested = 0, False
            job.confirmed, job.unconfirmed_expiries = False, 0
            assert (result.status, result.attempts, result.cancel_requested) == (
                JobStatus.PENDING,
                0,
                False,
            )

    @precondition(lambda self: bool(self.model.jobs))
    @rule(index=st.integers(0, 1_000))
    def delete(self, index: int) -> None:
        """An operator's delete: a finished job gone at once; a live one refused, unchanged."""
        jobs = list(self.model.jobs.values())
        job = jobs[index % len(jobs)]
        now = self.now()
        if job.id not in self.model.visible(now):
            with pytest.raises(JobNotFound):
                self.run(self.admin().delete(job.id))
        elif not job.status.is_terminal:
            with pytest.raises(JobNotFinished):
                self.run(self.admin().delete(job.id))
        else:
            deleted = self.run(self.admin().delete(job.id))
            assert (deleted.id, deleted.status) == (job.id, job.status)
            del self.model.jobs[job.id]
            self.deleted.append(job.id)

    @invariant()
    def deleted_jobs_stay_gone(self) -> None:
        async def read() -> list[Job | None]:
            return [await self.store.get(job_id) for job_id in self.deleted]

        assert self.run(read()) == [None] * len(self.deleted)

    @precondition(lambda self: self.time.manual)
    @rule(ms=st.sampled_from([1, 50, 500, 2_000]))
    def advance_clock(self, ms: int) -> None:
        assert isinstance(self.time, ManualTime)
        self.time.clock.advance(ms)

    @rule()
    def requeue_expired(self) -> None:
        now, count, after = self.timed(self.store.requeue_expired(), stamps=self.running())
        expired = [
            j
            for j in self.model.jobs.values()
            if j.status is JobStatus.RUNNING and j.deadline <= now
        ]
        assert count == len(expired)
        for job in expired:
            job.old_tokens.append(job.token)
            limit = job.max_attempts if job.max_attempts is not None else DEFAULT_MAX_ATTEMPTS
            if job.cancel_requested:
                self.model.finish(job, JobStatus.CANCELLED, now, after)
            elif not job.confirmed and job.unconfirmed_expiries < MAX_UNCONFIRMED_DELIVERIES:
                # The claim may never have reached a worker: the attempt is given back.
                job.attempts -= 1
                job.unconfirmed_expiries += 1
                self.model.requeue(job, now, after)
            elif job.attempts >= limit:
                self.model.finish(job, JobStatus.FAILED, now, after)
            else:
                self.model.requeue(job, now, after)

    @invariant()
    def store_agrees_with_model(self) -> None:
        job_ids = list(self.model.jobs)

        async def read() -> list[Job | None]:
            return [await self.store.get(job_id) for job_id in job_ids]

        # Nothing read here depends on a lease; but with a retention as short
        # as a lease, jobs finished in this step are first let go for good.
        # (With an hour's retention nothing finished expires within an
        # example, so the time is not needed at all.)
        now = 0
        if self.model.retention_ms < HOUR_MS:
            finished = [j.finished_hi for j in self.model.jobs.values() if j.status.is_terminal]
            self.time.wait_past(max(finished, default=0) + self.model.retention_ms)
            now = self.now()
        found = self.run(read())
        visible = self.model.visible(now)
        for job_id, stored in zip(job_ids, found, strict=True):
            job = self.model.jobs[job_id]
            if job_id not in visible:
                assert stored is None, job_id
                continue
            assert stored is not None, job_id
            assert (stored.status, stored.attempts, stored.cancel_requested, stored.priority) == (
                job.status,
                job.attempts,
                job.cancel_requested,
                job.priority,
            ), job_id
            if job.status is JobStatus.PENDING:
                # Exact on a manual clock; on Redis, within the call's bounds, then known.
                assert job.due <= stored.execution_time_ms <= job.due_hi, job_id
                job.due = job.due_hi = stored.execution_time_ms


MACHINE_SETTINGS = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
