"""A freed slot wakes an idle worker of a concurrency-limited type; plain jobs cost the same.

An idle claim of a type held by its concurrency limit blocks on the type's
wake list. Its safety poll is set to ten minutes here (cfg ``limit_poll_ms``),
so the blocked claim can only return a job within its wait if the settle (or
the sweep) that freed the slot woke it: a count, not a timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import (
    Job,
    JobStatus,
    Lease,
    Outcome,
    OutcomeKind,
    SystemClock,
    TypeLimits,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests.benchmarks.key_costs import commands

pytestmark = pytest.mark.redis

LEASE = 30_000
WAIT_MS = 8_000
TEN_MINUTES_MS = 600_000


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    opened = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    raw = aioredis.Redis.from_url(redis_url)
    await opened.claim(["warm-up"], limit=1, lease_ms=LEASE)
    await raw.hset(opened._core.namespaces[0] + "cfg", "limit_poll_ms", TEN_MINUTES_MS)
    await raw.aclose()
    yield opened
    await opened.close()


def jobs(count: int, job_type: str = "a", key: str | None = None) -> list[Job]:
    ids, now = UuidV7Generator(), SystemClock().now_ms()
    return [
        Job(
            id=ids.new_id(),
            type=job_type,
            payload=b"",
            status=JobStatus.PENDING,
            execution_time_ms=now,
            created_at=now,
            updated_at=now,
            limit_key=key,
        )
        for _ in range(count)
    ]


async def blocked_claim(store: RedisJobStore) -> asyncio.Task[list[Lease]]:
    waiting = asyncio.create_task(store.claim(["a"], limit=5, lease_ms=LEASE, wait_ms=WAIT_MS))
    # The claim ran and found the type held (nothing to return yet).
    await asyncio.sleep(0.3)
    assert not waiting.done()
    return waiting


async def test_a_settle_wakes_a_claim_held_by_the_types_concurrency(
    store: RedisJobStore,
) -> None:
    await store.set_type_limits("a", TypeLimits(concurrency=1))
    await store.add(jobs(2))
    (running,) = await store.claim(["a"], limit=5, lease_ms=LEASE)
    waiting = await blocked_claim(store)
    done = Outcome(job_id=running.job.id, token=running.token, kind=OutcomeKind.COMPLETE)
    assert await store.settle([done]) == [True]
    assert len(await waiting) == 1


async def test_a_settle_wakes_a_claim_held_by_a_keys_concurrency(store: RedisJobStore) -> None:
    await store.set_type_limits("a", TypeLimits(key_concurrency=1))
    await store.add(jobs(2, key="acme"))
    (running,) = await store.claim(["a"], limit=5, lease_ms=LEASE)
    waiting = await blocked_claim(store)
    failed = Outcome(job_id=running.job.id, token=running.token, kind=OutcomeKind.FAIL, error="x")
    assert await store.settle([failed]) == [True]
    assert len(await waiting) == 1


async def test_an_expired_lease_wakes_a_claim_held_by_a_keys_concurrency(
    store: RedisJobStore,
) -> None:
    await store.set_type_limits("a", TypeLimits(key_concurrency=1))
    await store.add(jobs(2, key="acme"))
    assert len(await store.claim(["a"], limit=5, lease_ms=200)) == 1
    waiting = await blocked_claim(store)
    for _ in range(50):
        if await store.requeue_expired() == 1:
            break
        await asyncio.sleep(0.1)
    # The slot freed with the expiry (the job is due again too): one starts, not two.
    assert len(await waiting) == 1


async def test_without_a_settle_the_held_claim_returns_nothing(store: RedisJobStore) -> None:
    """The control: with the poll at ten minutes, only a wake ends the wait early."""
    await store.set_type_limits("a", TypeLimits(concurrency=1))
    await store.add(jobs(2))
    assert len(await store.claim(["a"], limit=5, lease_ms=LEASE)) == 1
    assert await store.claim(["a"], limit=5, lease_ms=LEASE, wait_ms=1_500) == []


async def drain_commands(store: RedisJobStore, raw: aioredis.Redis, job_type: str) -> int:
    """Commands Redis ran to enqueue, claim and settle 50 jobs of ``job_type``."""
    before = await commands(raw)
    await store.add(jobs(50, job_type))
    for _ in range(5):
        leases = await store.claim([job_type], limit=10, lease_ms=LEASE)
        assert len(leases) == 10
        outcomes = [
            Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
            for lease in leases
        ]
        await store.settle(outcomes)
    return await commands(raw) - before


async def test_plain_jobs_cost_the_same_beside_keyed_ones(
    store: RedisJobStore, redis_url: str
) -> None:
    raw = aioredis.Redis.from_url(redis_url)
    try:
        # The first drain creates the type's keys and indexes: not counted.
        await drain_commands(store, raw, "p")
        alone = await drain_commands(store, raw, "p")
        # Another type with keyed jobs and per-key limits, and keyed jobs left over.
        await store.set_type_limits("k", TypeLimits(key_concurrency=1, key_rate=5))
        await store.add(jobs(20, "k", key="acme") + jobs(20, "k", key="zeta"))
        await store.claim(["k"], limit=10, lease_ms=LEASE)
        beside = await drain_commands(store, raw, "p")
        assert beside == alone
    finally:
        await raw.aclose()


async def test_keys_held_by_their_concurrency_stay_set_aside_past_the_poll(
    store: RedisJobStore, redis_url: str
) -> None:
    """A held key is not due again after the safety poll: only a settle or the sweep frees it.

    With the poll at 1 ms, claims after it would otherwise visit every held key
    again (the review: 2,000 held keys, 28 empty claims a second).
    """
    raw = aioredis.Redis.from_url(redis_url)
    try:
        namespace = store._core.namespaces[0]
        await raw.hset(namespace + "cfg", "limit_poll_ms", 1)
        await store.set_type_limits("a", TypeLimits(key_concurrency=1))
        held = 200
        await store.add([job for i in range(held) for job in jobs(2, key=f"k{i}")])
        running = 0
        for _ in range(held):
            running += len(await store.claim(["a"], limit=100, lease_ms=LEASE))
            if running == held:
                break
        assert running == held
        # Empty claims set the held keys aside (each visits at most 10 + 64 keys).
        for _ in range(10):
            assert await store.claim(["a"], limit=10, lease_ms=LEASE) == []
        await asyncio.sleep(0.05)  # well past the 1 ms poll
        seconds, micros = await raw.time()
        now_ms = seconds * 1000 + micros // 1000
        due = await raw.zrange(namespace + "kr:a", "-inf", now_ms + 1, byscore=True)
        assert [key for key in due if key != b""] == []  # '' is the lane of plain jobs
        before = await commands(raw)
        assert await store.claim(["a"], limit=10, lease_ms=LEASE) == []
        # One script call and its reads of the type's gates, no visit to a key.
        assert await commands(raw) - before < 20
    finally:
        await raw.aclose()
