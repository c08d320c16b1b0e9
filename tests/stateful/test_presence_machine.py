"""Worker presence, random sequences: the memory store, Redis and a plain model agree.

Rules heartbeat a worker (replacing what it said), deregister one, and (on
the memory store's manual clock) let time pass; after every step the listed
workers and the stats' per-type worker counts must be the model's. On Redis
the time to live is an hour, far beyond any example, as Redis's clock cannot
be moved; expiry on Redis is covered by the contract suite and the process
test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    JobStore,
    ManualClock,
    PresenceStore,
    UuidV7Generator,
    WorkerInfo,
)
from jobqueue.memory import MemoryJobStore
from jobqueue.redis import RedisJobStore, RedisStoreSettings

IDS = ("w-a", "w-b", "w-c", "w-d")
TYPES = ("email", "sms", "report")
HOUR_MS = 3_600_000
MACHINE_SETTINGS = settings(max_examples=60, stateful_step_count=25, deadline=None)


@dataclass
class Seen:
    info: WorkerInfo
    expires_at: int


class PresenceMachine(RuleBasedStateMachine):
    """One store, one model; ``clock`` is None where time cannot be moved (Redis)."""

    make_store: Callable[[], tuple[JobStore, ManualClock | None]]

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.store, self.clock = self.make_store()
        assert isinstance(self.store, PresenceStore)
        self.presence: PresenceStore = self.store
        self.model: dict[str, Seen] = {}
        # One due job per type, so stats list every type.
        service = JobService(self.store, clock=self.clock or _Wall(), ids=UuidV7Generator())
        for job_type in TYPES:
            self.runner.run(service.enqueue(EnqueueRequest(type=job_type)))

    def now(self) -> int:
        return self.clock.now_ms() if self.clock is not None else 0

    def live(self) -> list[Seen]:
        if self.clock is None:
            return list(self.model.values())
        return [seen for seen in self.model.values() if seen.expires_at > self.now()]

    @rule(
        worker_id=st.sampled_from(IDS),
        types=st.lists(st.sampled_from(TYPES), unique=True, max_size=3),
        busy=st.integers(0, 5),
        short=st.booleans(),
    )
    def heartbeat(self, worker_id: str, types: list[str], busy: int, short: bool) -> None:
        ttl = 1_000 if short and self.clock is not None else HOUR_MS
        info = WorkerInfo(id=worker_id, host="h", pid=1, types=tuple(types), busy=busy)
        stored = self.runner.run(self.presence.heartbeat(info, ttl_ms=ttl))
        assert (stored.types, stored.busy) == (tuple(types), busy)
        self.model[worker_id] = Seen(info, self.now() + ttl)

    @rule(worker_id=st.sampled_from(IDS))
    def deregister(self, worker_id: str) -> None:
        listed = any(seen.info.id == worker_id for seen in self.live())
        assert self.runner.run(self.presence.deregister(worker_id)) is listed
        self.model.pop(worker_id, None)

    @rule(ms=st.sampled_from((1, 500, 999, 1_000, 1_001)))
    def time_passes(self, ms: int) -> None:
        if self.clock is not None:
            self.clock.advance(ms)

    @invariant()
    def the_list_and_the_counts_are_the_model(self) -> None:
        listed = self.runner.run(self.presence.list_workers())
        expected = sorted(self.live(), key=lambda seen: seen.info.id)
        assert [(w.id, w.types, w.busy) for w in listed] == [
            (s.info.id, s.info.types, s.info.busy) for s in expected
        ]
        counts = {job_type: sum(job_type in s.info.types for s in expected) for job_type in TYPES}
        rows = {row.type: row.workers for row in self.runner.run(self.store.stats()).types}
        assert rows == counts
        handled = {job_type: n for job_type, n in counts.items() if n}
        assert self.runner.run(self.presence.worker_counts()) == handled

    def teardown(self) -> None:
        self.runner.run(self.store.close())
        self.runner.close()


class _Wall:
    """A producer clock for Redis, whose stores ignore it: jobs due at once."""

    def now_ms(self) -> int:
        return 0


def test_memory_store_presence_matches_the_model() -> None:
    def make() -> tuple[JobStore, ManualClock | None]:
        clock = ManualClock()
        return MemoryJobStore(clock=clock), clock

    machine = type("MemoryPresence", (PresenceMachine,), {"make_store": staticmethod(make)})
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)


def test_redis_store_presence_matches_the_model(redis_url: str) -> None:
    def make() -> tuple[JobStore, ManualClock | None]:
        prefix = f"jqpm-{uuid.uuid4().hex[:12]}"
        return RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=prefix)), None

    machine = type("RedisPresence", (PresenceMachine,), {"make_store": staticmethod(make)})
    run_state_machine_as_test(
        machine, settings=settings(MACHINE_SETTINGS, max_examples=25, stateful_step_count=20)
    )
