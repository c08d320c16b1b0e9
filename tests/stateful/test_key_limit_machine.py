"""The store machine with limit keys and a per-key concurrency limit (issue 15).

It adds to ``StoreMachine`` (every rule of the plain machine still runs:
claims, settles of every kind, renews, cancels, operators' retries and
deletes, lease expiries and sweeps) a rule that enqueues jobs under one of
two limit keys (mostly of type ``a``), due now or later, and a per-key
concurrency limit of 2 on type ``a`` from the start. The order across keys
is the store's (turns); what every claim must still show:

- as many leases as the limit or the claimable jobs allow, where a key of
  ``a`` can start at most ``2 - its RUNNING jobs`` (an expired lease counts
  until swept, as for the type's own limit);
- each key's leases are its earliest due jobs (FIFO within a key), and the
  unkeyed jobs' leases the head of their queue (priority, then due time);
- never more than 2 RUNNING jobs of one key of ``a`` (an invariant).
"""

from __future__ import annotations

import uuid
from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule, run_state_machine_as_test

from jobqueue.domain import Job, JobStatus, JobStore, SystemClock, TypeGates, TypeLimits
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests.stateful._store_machine import MACHINE_SETTINGS, TYPES, StoreMachine
from tests.stateful._store_model import Model, ModelJob
from tests.stateful._time import HOUR_MS, ManualTime, RedisTime, Time

KEYS = ("acme", "zeta")
LIMITED = TYPES[0]
PER_KEY = 2


class KeyedModel(Model):
    """The plain model plus each job's limit key and type ``a``'s per-key limit."""

    def __init__(self, retention_ms: int) -> None:
        super().__init__(retention_ms)
        self.keys: dict[str, str | None] = {}

    def running(self, job_type: str, key: str) -> int:
        return sum(
            1
            for job in self.jobs.values()
            if job.type == job_type
            and self.keys.get(job.id) == key
            and job.status is JobStatus.RUNNING
        )

    def claim(self, types: list[str], limit: int, now: int) -> list[ModelJob]:
        raise AssertionError("the machine checks keyed claims with claim_any_fair")

    def claim_any_fair(
        self, types: list[str], limit: int, now: int, ids: list[str]
    ) -> list[ModelJob]:
        pending = [j for j in self.jobs.values() if j.status is JobStatus.PENDING]
        assert all(j.due == j.due_hi for j in pending), "every due time is read back first"
        lanes: dict[tuple[str, str | None], list[ModelJob]] = {}
        for job in pending:
            if job.type in types and job.due <= now:
                lanes.setdefault((job.type, self.keys.get(job.id)), []).append(job)
        room = 0
        for (job_type, key), lane in lanes.items():
            lane.sort(key=ModelJob.claim_order)
            if key is not None and job_type == LIMITED:
                room += min(len(lane), max(PER_KEY - self.running(job_type, key), 0))
            else:
                room += len(lane)
        assert len(ids) == len(set(ids)) == min(limit, room), (ids, limit, room)
        taken = [self.jobs[job_id] for job_id in ids]
        for (job_type, key), lane in lanes.items():
            mine = sorted(
                (j for j in taken if j.type == job_type and self.keys.get(j.id) == key),
                key=ModelJob.claim_order,
            )
            assert mine == lane[: len(mine)], (job_type, key)
        return taken


class KeyedMachine(StoreMachine):
    exact_claim_order = False

    def __init__(self) -> None:
        super().__init__()
        self.model: KeyedModel = KeyedModel(self.time.retention_ms)
        gates = self.store
        assert isinstance(gates, TypeGates)
        self.run(gates.set_type_limits(LIMITED, TypeLimits(key_concurrency=PER_KEY)))

    @rule(
        specs=st.lists(
            st.tuples(
                st.sampled_from([LIMITED, LIMITED, *TYPES]),
                st.sampled_from(KEYS),
                st.sampled_from([0, 0, 1, 2, 3]),
            ),
            min_size=1,
            max_size=5,
        )
    )
    def enqueue_keyed(self, specs: list[tuple[str, str, int]]) -> None:
        now = self.now()
        jobs = [
            Job(
                id=self.ids.new_id(),
                type=job_type,
                payload=b"k",
                status=JobStatus.PENDING,
                execution_time_ms=now + self.time.delays[delay],
                created_at=now,
                updated_at=now,
                limit_key=key,
            )
            for job_type, key, delay in specs
        ]
        due_at_once = any(job.execution_time_ms == now for job in jobs)
        _, stored, after = self.timed(self.store.add(jobs), stamps=due_at_once)
        assert [job.id for job in stored] == [job.id for job in jobs]
        for job, kept in zip(jobs, stored, strict=True):
            assert kept.limit_key == job.limit_key
            due = job.execution_time_ms
            if due == now:
                assert now <= kept.execution_time_ms <= after
                due = kept.execution_time_ms
            assert kept.execution_time_ms == due
            self.model.jobs[job.id] = ModelJob(job.id, job.type, due, due, None)
            self.model.keys[job.id] = job.limit_key

    @rule()
    def claim_the_limited_type(self) -> None:
        # Claims of ``a`` alone with long leases: keys reach their limit often.
        self.claim([LIMITED], 4, len(self.time.leases) - 1)

    @invariant()
    def no_key_runs_more_than_its_limit(self) -> None:
        running = Counter(
            self.model.keys.get(job.id)
            for job in self.model.jobs.values()
            if job.type == LIMITED and job.status is JobStatus.RUNNING
        )
        running.pop(None, None)
        assert max(running.values(), default=0) <= PER_KEY


KEYED_SETTINGS = settings(MACHINE_SETTINGS, max_examples=100)


def test_memory_keyed_claims_match_the_model() -> None:
    def make() -> tuple[JobStore, Time]:
        clock = ManualTime()
        settings_ = MemoryStoreSettings(retention_ms=clock.retention_ms)
        return MemoryJobStore(settings_, clock=clock.clock), clock

    class Machine(KeyedMachine):
        make_store = staticmethod(make)

    run_state_machine_as_test(Machine, settings=KEYED_SETTINGS)


def test_redis_keyed_claims_match_the_model(redis_url: str) -> None:
    def make() -> tuple[JobStore, Time]:
        prefix = f"jqtest-km-{uuid.uuid4().hex[:12]}"
        clock = RedisTime(redis_url, retention_ms=HOUR_MS)
        settings_ = RedisStoreSettings(url=redis_url, key_prefix=prefix, retention_ms=HOUR_MS)
        return RedisJobStore(settings_, clock=SystemClock()), clock

    class Machine(KeyedMachine):
        make_store = staticmethod(make)

    run_state_machine_as_test(Machine, settings=KEYED_SETTINGS)
