"""The store machine with unique jobs: random sequences, lease expiries and sweeps included.

It adds to ``StoreMachine`` (every rule of the plain machine still runs) a rule
that enqueues a job under one of two unique keys, with a random scope and
conflict policy, and a model of the locks: taken by a stored holder, released
by a claim (PENDING scope) and by every finish (settle, cancel, a sweep that
fails or cancels an expired lease, a REPLACE). After every step the locks the
store really holds are read (the memory store's table; on Redis every
``u:`` key of the prefix) and must be exactly the model's: every lock names
its live holder in scope, so no lock outlives its job whatever the sequence.
A worker killed mid-job is a lease nobody renews: the machine's 1 ms leases
and its sweeps are those kills. (DEBOUNCE windows are wall time, which the
Redis machine cannot move; the contract tests cover them.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule, run_state_machine_as_test

from jobqueue.domain import (
    Job,
    JobStatus,
    JobStore,
    OnConflict,
    SystemClock,
    UniqueConflict,
    UniqueRule,
    UniqueScope,
)
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests.stateful._store_machine import MACHINE_SETTINGS, TYPES, StoreMachine
from tests.stateful._store_model import Model, ModelJob
from tests.stateful._time import HOUR_MS, ManualTime, RedisTime, Time

KEYS = ("k1", "k2")


class UniqueModel(Model):
    """The plain model plus unique locks: "type/key" -> (holder id, scope)."""

    def __init__(self, retention_ms: int) -> None:
        super().__init__(retention_ms)
        self.locks: dict[str, tuple[str, UniqueScope]] = {}

    def release(self, job: ModelJob, *, claimed: bool) -> None:
        for key, (holder, scope) in list(self.locks.items()):
            if holder == job.id and not (claimed and scope is UniqueScope.ACTIVE):
                del self.locks[key]

    def claim(self, types: list[str], limit: int, now: int) -> list[ModelJob]:
        taken = super().claim(types, limit, now)
        for job in taken:
            self.release(job, claimed=True)
        return taken

    def claim_any_fair(
        self, types: list[str], limit: int, now: int, ids: list[str]
    ) -> list[ModelJob]:
        taken = super().claim_any_fair(types, limit, now, ids)
        for job in taken:
            self.release(job, claimed=True)
        return taken

    def finish(self, job: ModelJob, status: JobStatus, now: int, now_hi: int) -> None:
        super().finish(job, status, now, now_hi)
        self.release(job, claimed=False)


class UniqueMachine(StoreMachine):
    """Subclasses say how to read the locks the store holds."""

    read_locks: Callable[[UniqueMachine], dict[str, str]]

    def __init__(self) -> None:
        super().__init__()
        self.model: UniqueModel = UniqueModel(self.time.retention_ms)

    @rule(
        job_type=st.sampled_from(TYPES),
        key=st.sampled_from(KEYS),
        scope=st.sampled_from([UniqueScope.PENDING, UniqueScope.ACTIVE]),
        on_conflict=st.sampled_from(list(OnConflict)),
        delay=st.integers(0, 3),
    )
    def enqueue_unique(
        self,
        job_type: str,
        key: str,
        scope: UniqueScope,
        on_conflict: OnConflict,
        delay: int,
    ) -> None:
        now = self.now()
        job = Job(
            id=self.ids.new_id(),
            type=job_type,
            payload=b"u",
            status=JobStatus.PENDING,
            execution_time_ms=now + self.time.delays[delay],
            created_at=now,
            updated_at=now,
            unique=UniqueRule(key=key, scope=scope, on_conflict=on_conflict),
        )
        slot = f"{job_type}/{key}"  # keys are per job type
        held = self.model.locks.get(slot)
        holder = self.model.jobs[held[0]] if held else None
        if holder is not None and (
            on_conflict is OnConflict.REJECT
            or (on_conflict is OnConflict.REPLACE and holder.status is not JobStatus.PENDING)
        ):
            with pytest.raises(UniqueConflict) as caught:
                self.run(self.store.add([job]))
            assert caught.value.holder_id == holder.id
            return
        due_at_once = job.execution_time_ms == now
        before, stored, after = self.timed(self.store.add([job]), stamps=due_at_once)
        if holder is not None and on_conflict is OnConflict.RETURN_EXISTING:
            assert [kept.id for kept in stored] == [holder.id]
            return
        assert [kept.id for kept in stored] == [job.id]
        if holder is not None:  # replaced: the PENDING holder ends CANCELLED
            self.model.finish(holder, JobStatus.CANCELLED, before, after)
        due = stored[0].execution_time_ms
        if due_at_once:
            assert now <= due <= after
        else:
            assert due == job.execution_time_ms
        self.model.jobs[job.id] = ModelJob(job.id, job.type, due, due, None)
        self.model.locks[slot] = (job.id, scope)

    @invariant()
    def locks_are_the_models(self) -> None:
        expected = {key: holder for key, (holder, _) in self.model.locks.items()}
        assert type(self).read_locks(self) == expected
        for holder, scope in self.model.locks.values():
            status = self.model.jobs[holder].status
            in_scope = (
                (JobStatus.PENDING,)
                if scope is UniqueScope.PENDING
                else (
                    JobStatus.PENDING,
                    JobStatus.RUNNING,
                )
            )
            assert status in in_scope, (holder, status, scope)


UNIQUE_SETTINGS = settings(MACHINE_SETTINGS, max_examples=100)


def test_memory_unique_locks_match_the_model() -> None:
    def make() -> tuple[JobStore, Time]:
        clock = ManualTime()
        settings_ = MemoryStoreSettings(retention_ms=clock.retention_ms)
        return MemoryJobStore(settings_, clock=clock.clock), clock

    def read_locks(machine: UniqueMachine) -> dict[str, str]:
        store = machine.store
        assert isinstance(store, MemoryJobStore)
        return {key: lock.job_id for key, lock in store._unique_locks.items()}

    class Machine(UniqueMachine):
        make_store = staticmethod(make)

    Machine.read_locks = staticmethod(read_locks)
    run_state_machine_as_test(Machine, settings=UNIQUE_SETTINGS)


def test_redis_unique_locks_match_the_model(redis_url: str) -> None:
    prefixes: list[str] = []

    def make() -> tuple[JobStore, Time]:
        prefix = f"jqtest-um-{uuid.uuid4().hex[:12]}"
        prefixes.append(prefix)
        clock = RedisTime(redis_url, retention_ms=HOUR_MS)
        settings_ = RedisStoreSettings(url=redis_url, key_prefix=prefix, retention_ms=HOUR_MS)
        return RedisJobStore(settings_, clock=SystemClock()), clock

    raw = redis.Redis.from_url(redis_url)

    # Every lock the machine can make is one of TYPES x KEYS: read those, not a SCAN
    # of the session's Redis, which other tests fill (100,000 keys and more) and
    # which a SCAN per step walked whole (a CI run timed out at 120 s).
    slots = [f"{job_type}/{key}" for job_type in TYPES for key in KEYS]

    def read_locks(machine: UniqueMachine) -> dict[str, str]:
        head = f"{{{prefixes[-1]}}}:u:"
        holders = raw.mget([head + slot for slot in slots])
        return {
            slot: holder.decode()  # type: ignore[union-attr]
            for slot, holder in zip(slots, holders, strict=True)
            if holder is not None
        }

    class Machine(UniqueMachine):
        make_store = staticmethod(make)

    Machine.read_locks = staticmethod(read_locks)
    try:
        run_state_machine_as_test(Machine, settings=UNIQUE_SETTINGS)
    finally:
        raw.close()
