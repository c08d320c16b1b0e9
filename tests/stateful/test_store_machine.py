"""Random operation sequences against each store, checked step by step against a plain model."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from jobqueue.domain import (
    DEFAULT_MAX_ATTEMPTS,
    Job,
    JobAlreadyFinished,
    JobNotFound,
    JobStatus,
    JobStore,
    LeaseState,
    ManualClock,
    Outcome,
    OutcomeKind,
    UuidV7Generator,
)
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings

RETENTION_MS = 5_000
TYPES = ("a", "b", "c")
T = TypeVar("T")


@dataclass
class ModelJob:
    id: str
    type: str
    due: int
    max_attempts: int | None
    status: JobStatus = JobStatus.PENDING
    attempts: int = 0
    cancel_requested: bool = False
    token: str = ""
    deadline: int = 0
    finished_at: int = 0
    old_tokens: list[str] = field(default_factory=list)


class Model:
    """The store's contract in its plainest form: a dict and linear scans."""

    def __init__(self) -> None:
        self.jobs: dict[str, ModelJob] = {}
        self.rotation = 0

    def visible(self, now: int) -> dict[str, ModelJob]:
        return {
            job_id: job
            for job_id, job in self.jobs.items()
            if not (job.status.is_terminal and job.finished_at + RETENTION_MS <= now)
        }

    def claim(self, types: list[str], limit: int, now: int) -> list[ModelJob]:
        order = list(dict.fromkeys(types))
        self.rotation = (self.rotation + 1) % len(order)
        active = order[self.rotation :] + order[: self.rotation]
        queues = {
            t: sorted(
                (j for j in self.jobs.values() if j.type == t and j.status is JobStatus.PENDING),
                key=lambda j: (j.due, j.id),
            )
            for t in order
        }
        taken: list[ModelJob] = []
        while len(taken) < limit and active:
            still = []
            share = -(-(limit - len(taken)) // len(active))
            for t in active:
                want = min(share, limit - len(taken))
                if want <= 0:
                    break
                due = [j for j in queues[t] if j.due <= now and j not in taken][:want]
                taken += due
                if len(due) == want:
                    still.append(t)
            active = still
        return taken

    def finish(self, job: ModelJob, status: JobStatus, now: int) -> None:
        job.status, job.finished_at, job.token = status, now, ""

    def requeue(self, job: ModelJob, due: int) -> None:
        job.status, job.due, job.token = JobStatus.PENDING, due, ""


class StoreMachine(RuleBasedStateMachine):
    """Subclasses name the adapter under test with ``make_store``."""

    make_store: Callable[[ManualClock], JobStore]

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.clock = ManualClock()
        self.store = type(self).make_store(self.clock)
        self.model = Model()
        self.ids = UuidV7Generator()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.runner.close()

    def pick(self, index: int, status: JobStatus | None = None) -> ModelJob | None:
        jobs = [
            j
            for j in self.model.visible(self.clock.now_ms()).values()
            if status is None or j.status is status
        ]
        return jobs[index % len(jobs)] if jobs else None

    @rule(
        job_type=st.sampled_from(TYPES),
        delay=st.sampled_from([-5, 0, 10, 1_000]),
        max_attempts=st.sampled_from([None, 1, 2, 3]),
    )
    def enqueue(self, job_type: str, delay: int, max_attempts: int | None) -> None:
        now = self.clock.now_ms()
        job = Job(
            id=self.ids.new_id(),
            type=job_type,
            payload=b"p",
            status=JobStatus.PENDING,
            execution_time_ms=now + delay,
            created_at=now,
            updated_at=now,
            max_attempts=max_attempts,
        )
        assert self.run(self.store.add([job])) == [job]
        self.model.jobs[job.id] = ModelJob(job.id, job_type, now + delay, max_attempts)

    @rule(
        types=st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True),
        limit=st.integers(1, 4),
        lease_ms=st.sampled_from([100, 1_000]),
    )
    def claim(self, types: list[str], limit: int, lease_ms: int) -> None:
        now = self.clock.now_ms()
        expected = self.model.claim(types, limit, now)
        leases = self.run(self.store.claim(types, limit=limit, lease_ms=lease_ms))
        assert [lease.job.id for lease in leases] == [job.id for job in expected]
        for lease, job in zip(leases, expected, strict=True):
            job.status, job.attempts = JobStatus.RUNNING, job.attempts + 1
            job.token, job.deadline = lease.token, now + lease_ms
            assert lease.job.attempts == job.attempts

    @precondition(lambda self: any(j.status is JobStatus.RUNNING for j in self.model.jobs.values()))
    @rule(
        index=st.integers(0, 1_000),
        kind=st.sampled_from(list(OutcomeKind)),
        retry_delay=st.sampled_from([0, 100]),
    )
    def settle(self, index: int, kind: OutcomeKind, retry_delay: int) -> None:
        job = self.pick(index, JobStatus.RUNNING)
        if job is None:
            return
        now = self.clock.now_ms()
        outcome = Outcome(
            job_id=job.id,
            token=job.token,
            kind=kind,
            result=b"r" if kind is OutcomeKind.COMPLETE else None,
            error="e" if kind in (OutcomeKind.RETRY, OutcomeKind.FAIL) else None,
            retry_at_ms=now + retry_delay if kind is OutcomeKind.RETRY else None,
        )
        assert self.run(self.store.settle([outcome])) == [True]
        job.old_tokens.append(job.token)
        if kind is OutcomeKind.COMPLETE:
            self.model.finish(job, JobStatus.COMPLETED, now)
        elif kind is OutcomeKind.FAIL:
            self.model.finish(job, JobStatus.FAILED, now)
        elif kind is OutcomeKind.CANCELLED or job.cancel_requested:
            self.model.finish(job, JobStatus.CANCELLED, now)
        else:
            if kind is OutcomeKind.RELEASE:
                job.attempts -= 1
            self.model.requeue(job, now + retry_delay if kind is OutcomeKind.RETRY else now)

    @precondition(lambda self: any(j.old_tokens for j in self.model.jobs.values()))
    @rule(index=st.integers(0, 1_000), kind=st.sampled_from(list(OutcomeKind)))
    def settle_with_a_stale_token(self, index: int, kind: OutcomeKind) -> None:
        stale = [j for j in self.model.jobs.values() if j.old_tokens]
        job = stale[index % len(stale)]
        outcome = Outcome(job_id=job.id, token=job.old_tokens[-1], kind=kind)
        assert self.run(self.store.settle([outcome])) == [False]

    @precondition(lambda self: any(j.status is JobStatus.RUNNING for j in self.model.jobs.values()))
    @rule(index=st.integers(0, 1_000), lease_ms=st.sampled_from([100, 1_000]))
    def renew(self, index: int, lease_ms: int) -> None:
        job = self.pick(index, JobStatus.RUNNING)
        if job is None:
            return
        expected = LeaseState.CANCEL_REQUESTED if job.cancel_requested else LeaseState.ACTIVE
        states = self.run(self.store.renew([(job.id, job.token)], lease_ms=lease_ms))
        assert states == [expected]
        job.deadline = self.clock.now_ms() + lease_ms

    @precondition(lambda self: bool(self.model.jobs))
    @rule(index=st.integers(0, 1_000))
    def cancel(self, index: int) -> None:
        jobs = list(self.model.jobs.values())
        job = jobs[index % len(jobs)]
        now = self.clock.now_ms()
        if job.id not in self.model.visible(now):
            with pytest.raises(JobNotFound):
                self.run(self.store.cancel(job.id))
        elif job.status.is_terminal:
            with pytest.raises(JobAlreadyFinished):
                self.run(self.store.cancel(job.id))
        else:
            result = self.run(self.store.cancel(job.id))
            if job.status is JobStatus.PENDING:
                self.model.finish(job, JobStatus.CANCELLED, now)
            else:
                job.cancel_requested = True
            assert (result.status, result.cancel_requested) == (job.status, job.cancel_requested)

    @rule(ms=st.sampled_from([1, 50, 500, 2_000]))
    def advance_clock(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def requeue_expired(self) -> None:
        now = self.clock.now_ms()
        expired = [
            j
            for j in self.model.jobs.values()
            if j.status is JobStatus.RUNNING and j.deadline <= now
        ]
        assert self.run(self.store.requeue_expired()) == len(expired)
        for job in expired:
            job.old_tokens.append(job.token)
            limit = job.max_attempts if job.max_attempts is not None else DEFAULT_MAX_ATTEMPTS
            if job.cancel_requested:
                self.model.finish(job, JobStatus.CANCELLED, now)
            elif job.attempts >= limit:
                self.model.finish(job, JobStatus.FAILED, now)
            else:
                self.model.requeue(job, now)

    @invariant()
    def store_agrees_with_model(self) -> None:
        visible = self.model.visible(self.clock.now_ms())
        for job_id, job in self.model.jobs.items():
            stored = self.run(self.store.get(job_id))
            if job_id not in visible:
                assert stored is None, job_id
                continue
            assert stored is not None, job_id
            assert (stored.status, stored.attempts, stored.cancel_requested) == (
                job.status,
                job.attempts,
                job.cancel_requested,
            ), job_id
            if job.status is JobStatus.PENDING:
                assert stored.execution_time_ms == job.due


MACHINE_SETTINGS = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_memory_store_matches_the_model() -> None:
    def make(clock: ManualClock) -> JobStore:
        return MemoryJobStore(MemoryStoreSettings(retention_ms=RETENTION_MS), clock=clock)

    class MemoryMachine(StoreMachine):
        make_store = staticmethod(make)

    run_state_machine_as_test(MemoryMachine, settings=MACHINE_SETTINGS)


def test_redis_store_matches_the_model(redis_url: str) -> None:
    def make(clock: ManualClock) -> JobStore:
        prefix = f"jqtest-sm-{uuid.uuid4().hex[:12]}"
        settings_ = RedisStoreSettings(url=redis_url, key_prefix=prefix, retention_ms=RETENTION_MS)
        return RedisJobStore(settings_, clock=clock)

    class RedisMachine(StoreMachine):
        make_store = staticmethod(make)

    run_state_machine_as_test(RedisMachine, settings=MACHINE_SETTINGS)
