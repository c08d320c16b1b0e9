"""One contract, every JobStore adapter: each test runs on each store (dramatiq's pattern).

Time is the one thing the adapters cannot share. The memory store reads an
injected clock, so a test can move it by exactly one millisecond; Redis reads
its own (``TIME`` in every script), which no test can move. So tests never
touch a clock directly: they go through a ``Passage``, which advances the
ManualClock for the memory store and really waits for Redis, and which reads
"now" from the store's own clock for bounds. A Redis test can then only assert
what real elapsed time guarantees: after ``advance(ms)`` at least ``ms`` passed
on Redis's clock, and an event that must *not* have happened yet is at least
``guard_ms`` (over a second) away, so a slow, shared machine cannot fail it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import (
    Job,
    JobStatus,
    JobStore,
    ManualClock,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._shards import shard_of_type, with_shard
from tests._redis_server import ClusterProcesses

RETENTION_MS = 60_000
"""The default store's retention: longer than any test, so nothing expires unasked."""

REDIS_GUARD_MS = 1_100
"""How far ahead of Redis's clock an event must be for a test to assert it has not happened."""

CLUSTER_SHARDS = 8
"""Virtual shards of the cluster backend: the contract's types spread over its 3 masters."""


class Passage(Protocol):
    """Time as one store sees it: read it, let it pass."""

    guard_ms: int
    """The margin a "not yet" assertion leaves: 0 on a manual clock, over a second on Redis."""

    def producer_now(self) -> int:
        """The producer's clock, which stamps the jobs tests build (``make_job``)."""
        ...

    async def now_ms(self) -> int:
        """The store's own clock now."""
        ...

    async def advance(self, ms: int) -> None:
        """Return once at least ``ms`` passed on the store's clock."""
        ...


class ManualPassage:
    """The memory store's clock is the test's ManualClock: time moves exactly as told."""

    guard_ms = 0

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def producer_now(self) -> int:
        return self.clock.now_ms()

    async def now_ms(self) -> int:
        return self.clock.now_ms()

    async def advance(self, ms: int) -> None:
        self.clock.advance(ms)


class RedisPassage:
    """Redis's clock, read with TIME on a plain connection; time passes by really waiting."""

    guard_ms = REDIS_GUARD_MS

    def __init__(self, raw: aioredis.Redis) -> None:
        self.raw = raw
        # The producer runs on this host, as Redis does: an honest clock.
        self.clock = SystemClock()

    def producer_now(self) -> int:
        return self.clock.now_ms()

    async def now_ms(self) -> int:
        seconds, micros = await self.raw.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def advance(self, ms: int) -> None:
        # TIME is read in whole ms (floored), so one more ms makes the bound
        # hold for the true instants; asyncio's sleep is on the monotonic
        # clock, so the result is checked on Redis's, and topped up if short.
        until = await self.now_ms() + ms + 1
        await asyncio.sleep(ms / 1000)
        for _ in range(1_000):  # bounded: each round sleeps what is missing
            missing = until - await self.now_ms()
            if missing <= 0:
                return
            await asyncio.sleep(missing / 1000)
        raise AssertionError("Redis's clock did not advance")


MakeStore = Callable[..., JobStore]
MakeJob = Callable[..., Job]


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every store: in memory, one Redis, and a Redis Cluster of 3 masters and 3 replicas
    with 8 virtual shards (set JOBQUEUE_SKIP_CLUSTER_TESTS=1 to leave it out)."""
    return str(request.param)


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    if os.environ.get("JOBQUEUE_SKIP_REDIS_TESTS") == "1":
        pytest.skip("JOBQUEUE_SKIP_REDIS_TESTS=1")
    if os.environ.get("JOBQUEUE_SKIP_CLUSTER_TESTS") == "1":
        pytest.skip("JOBQUEUE_SKIP_CLUSTER_TESTS=1")
    cluster = ClusterProcesses()
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.close()


def _first_node(cluster_url: str) -> str:
    """A ``redis://`` URL of one node of a ``redis+cluster://`` URL (for TIME)."""
    return "redis://" + cluster_url.split("://", 1)[1].split(",", 1)[0]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def passage(
    backend: str, clock: ManualClock, request: pytest.FixtureRequest
) -> AsyncIterator[Passage]:
    if backend == "memory":
        yield ManualPassage(clock)
        return
    if backend == "redis-cluster":
        # Every master runs on this host's clock: any one tells the time.
        url = _first_node(request.getfixturevalue("redis_cluster_url"))
    else:
        url = request.getfixturevalue("redis_url")
    raw = aioredis.Redis.from_url(url)
    yield RedisPassage(raw)
    await raw.aclose()


@pytest.fixture
async def make_store(
    backend: str, clock: ManualClock, request: pytest.FixtureRequest
) -> AsyncIterator[MakeStore]:
    """Build a store of the test's backend; ``retention_ms`` per store (all share one queue)."""
    made: list[JobStore] = []

    def make(*, retention_ms: int = RETENTION_MS) -> JobStore:
        adapter: JobStore
        if backend == "memory":
            adapter = MemoryJobStore(MemoryStoreSettings(retention_ms=retention_ms), clock=clock)
        else:
            prefix: str = request.getfixturevalue("key_prefix")
            if backend == "redis-cluster":
                settings = RedisStoreSettings(
                    url=request.getfixturevalue("redis_cluster_url"),
                    key_prefix=prefix,
                    retention_ms=retention_ms,
                    shards=CLUSTER_SHARDS,
                )
            else:
                url: str = request.getfixturevalue("redis_url")
                settings = RedisStoreSettings(url=url, key_prefix=prefix, retention_ms=retention_ms)
            adapter = RedisJobStore(settings, clock=SystemClock())
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.close()


@pytest.fixture
def store(make_store: MakeStore) -> JobStore:
    return make_store()


@pytest.fixture
def make_job(passage: Passage, backend: str) -> MakeJob:
    """New PENDING jobs stamped by the producer's clock, due ``delay_ms`` after it.

    On the cluster, ids name their type's shard, as the sharded store's
    ``add`` would rewrite them, so tests keep using the ids they made.
    """
    ids = UuidV7Generator()
    shards = CLUSTER_SHARDS if backend == "redis-cluster" else 1

    def make(
        job_type: str = "email",
        payload: bytes = b"{}",
        *,
        delay_ms: int = 0,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        now = passage.producer_now()
        return Job(
            id=with_shard(ids.new_id(), shard_of_type(job_type, shards), shards),
            type=job_type,
            payload=payload,
            status=JobStatus.PENDING,
            execution_time_ms=now + delay_ms,
            created_at=now,
            updated_at=now,
            max_attempts=max_attempts,
            idempotency_key=idempotency_key,
        )

    return make
