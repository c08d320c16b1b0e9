"""The memory store's listing index against a plain sort, through any sequence of changes.

The store keeps its jobs ordered per (status, type) as they change
(jobqueue/memory/_index.py) instead of sorting them all for each page. Here
Hypothesis drives every operation that moves a job in the listing order
(enqueue, claim, renew, settle, cancel, retry, delete, the lease sweep,
retention), and after each step every filter's pages, walked with a small
page size, must equal the jobs sorted as the port's ``list_jobs`` says:
status, type, then due time, lease deadline or finish time, then id — with
the positions computed here from what the store answered, not by the index.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from jobqueue.domain import (
    Job,
    JobAlreadyFinished,
    JobNotFinished,
    JobNotFound,
    JobNotRetryable,
    JobQuery,
    JobStatus,
    LeaseState,
    ManualClock,
    Outcome,
    OutcomeKind,
    UuidV7Generator,
)
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings

TYPES = ("a", "b", "c")
T = TypeVar("T")
RETENTION_MS = 5_000


class ListingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.clock = ManualClock()
        self.store = MemoryJobStore(
            MemoryStoreSettings(retention_ms=RETENTION_MS), clock=self.clock
        )
        self.ids = UuidV7Generator()
        self.known: list[str] = []
        self.deadlines: dict[str, int] = {}
        self.tokens: dict[str, str] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def teardown(self) -> None:
        self.runner.close()

    @rule(
        job_type=st.sampled_from(TYPES),
        delay=st.sampled_from([0, 0, 10, 1_000]),
        n=st.integers(1, 3),
    )
    def enqueue(self, job_type: str, delay: int, n: int) -> None:
        now = self.clock.now_ms()
        jobs = [
            Job(
                id=self.ids.new_id(),
                type=job_type,
                payload=b"",
                status=JobStatus.PENDING,
                execution_time_ms=now + delay,
                created_at=now,
                updated_at=now,
                max_attempts=2,
            )
            for _ in range(n)
        ]
        self.run(self.store.add(jobs))
        self.known += [job.id for job in jobs]

    @rule(
        types=st.lists(st.sampled_from(TYPES), min_size=1, unique=True),
        lease=st.sampled_from([20, 500]),
    )
    def claim(self, types: list[str], lease: int) -> None:
        for claimed in self.run(self.store.claim(types, limit=2, lease_ms=lease)):
            self.deadlines[claimed.job.id] = claimed.deadline_ms
            self.tokens[claimed.job.id] = claimed.token

    @precondition(lambda self: bool(self.tokens))
    @rule(index=st.integers(0, 100), kind=st.sampled_from(list(OutcomeKind)))
    def settle(self, index: int, kind: OutcomeKind) -> None:
        job_id = sorted(self.tokens)[index % len(self.tokens)]
        outcome = Outcome(job_id=job_id, token=self.tokens.pop(job_id), kind=kind, error="e")
        self.run(self.store.settle([outcome]))

    @precondition(lambda self: bool(self.tokens))
    @rule(index=st.integers(0, 100))
    def renew(self, index: int) -> None:
        job_id = sorted(self.tokens)[index % len(self.tokens)]
        (state,) = self.run(self.store.renew([(job_id, self.tokens[job_id])], lease_ms=700))
        if state is not LeaseState.LOST:  # a lost lease (expired, or settled) keeps its place
            self.deadlines[job_id] = self.clock.now_ms() + 700

    @precondition(lambda self: bool(self.known))
    @rule(index=st.integers(0, 1_000), action=st.sampled_from(["cancel", "retry", "delete"]))
    def operate(self, index: int, action: str) -> None:
        job_id = self.known[index % len(self.known)]
        # A refusal (the job is gone, or its status does not allow it) changes nothing.
        with contextlib.suppress(JobNotFound, JobAlreadyFinished, JobNotRetryable, JobNotFinished):
            self.run(getattr(self.store, action)(job_id))

    @rule(ms=st.sampled_from([1, 30, 600, 6_000]))
    def advance(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def sweep(self) -> None:
        self.run(self.store.requeue_expired())

    @invariant()
    def pages_match_a_plain_sort(self) -> None:
        self.run(self.check_pages())

    async def check_pages(self) -> None:
        found = [await self.store.get(job_id) for job_id in self.known]
        jobs = [job for job in found if job is not None]

        def key(job: Job) -> tuple[int, str, int, str]:
            if job.status is JobStatus.PENDING:
                position = job.execution_time_ms
            elif job.status is JobStatus.RUNNING:
                position = self.deadlines[job.id]
            else:
                position = job.updated_at
            return (int(job.status), job.type, position, job.id)

        for status in (None, *JobStatus):
            for job_type in (None, *TYPES):
                expected = sorted(
                    key(job)
                    for job in jobs
                    if (status is None or job.status is status)
                    and (job_type is None or job.type == job_type)
                )
                walked = [key(job) for job in await self.walk(status, job_type)]
                assert walked == expected, (status, job_type)

    async def walk(self, status: JobStatus | None, job_type: str | None) -> list[Job]:
        seen: list[Job] = []
        cursor = ""
        for _ in range(1_000):
            query = JobQuery(type=job_type, status=status, limit=2, cursor=cursor)
            page = await self.store.list_jobs(query)
            seen += page.jobs
            cursor = page.next_cursor
            if not cursor:
                return seen
        raise AssertionError("the listing never ended")


TestListingIndex = ListingMachine.TestCase
TestListingIndex.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
