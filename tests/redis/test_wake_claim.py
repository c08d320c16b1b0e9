"""An idle claim's next claim rides behind its wait: one connection, no round trip between.

A worker with nothing to do blocks on its types' wake lists; when a token
comes, it used to learn of it and only then send its claim: a second round
trip on the path of every job's start latency. The claim is now written
right behind the BLPOP on the same connection, and Redis runs it the moment
the wait ends (_waits.py ``wait_then``). These tests read where the claim ran
from Redis's own ``CLIENT LIST`` (each client's last command), so they fail
on the old path, where the blocked connection's last command stays BLPOP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import JobService, Lease, SystemClock, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests._redis_clients import until
from tests._redis_server import RedisProcess

pytestmark = pytest.mark.redis

LEASE_MS = 60_000


@pytest.fixture(scope="module")
def own_redis() -> Iterator[str]:
    """A Redis of this module's own: CLIENT LIST and SCRIPT FLUSH see only these tests."""
    server = RedisProcess()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        server.close()


@pytest.fixture
async def raw(own_redis: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(own_redis)
    await client.ping()
    yield client
    await client.aclose()


def make_store(url: str, prefix: str) -> RedisJobStore:
    return RedisJobStore(RedisStoreSettings(url=url, key_prefix=prefix), clock=SystemClock())


def service_for(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


async def blocked_ids(raw: aioredis.Redis) -> set[int]:
    """The clients Redis holds in a BLPOP now."""
    return {int(c["id"]) for c in await raw.client_list() if c.get("cmd") == "blpop"}


async def last_commands(raw: aioredis.Redis, ids: set[int]) -> dict[int, str]:
    return {int(c["id"]): c["cmd"] for c in await raw.client_list() if int(c["id"]) in ids}


async def wait_blocked(raw: aioredis.Redis, count: int) -> set[int]:
    found: set[int] = set()

    async def blocked() -> bool:
        nonlocal found
        found = await blocked_ids(raw)
        return len(found) >= count

    assert await until(blocked), f"Redis never held {count} blocked clients"
    return found


def claim_task(store: RedisJobStore, wait_ms: int, limit: int = 1) -> asyncio.Task[list[Lease]]:
    return asyncio.create_task(store.claim(["t"], limit=limit, lease_ms=LEASE_MS, wait_ms=wait_ms))


async def test_the_claim_after_a_wake_runs_on_the_blocked_connection(
    own_redis: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    worker, producer = make_store(own_redis, key_prefix), make_store(own_redis, key_prefix)
    try:
        claim = claim_task(worker, wait_ms=10_000)
        (blocked,) = await wait_blocked(raw, 1)
        job = await service_for(producer).enqueue("t")
        (lease,) = await asyncio.wait_for(claim, 5)
        assert lease.job.id == job.id
        assert lease.deadline_ms > job.created_at
        # The blocked connection's last command is the claim, not its BLPOP.
        assert await last_commands(raw, {blocked}) == {blocked: "evalsha"}
    finally:
        await worker.close()
        await producer.close()


async def test_a_job_that_falls_due_during_the_wait_is_claimed_behind_its_timeout(
    own_redis: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    worker, producer = make_store(own_redis, key_prefix), make_store(own_redis, key_prefix)
    try:
        now_s, _ = await raw.time()
        due_ms = int(now_s) * 1000 + 1_500  # Redis's clock decides: a due time ahead of it
        job = await service_for(producer).enqueue("t", execution_time_ms=due_ms)
        claim = claim_task(worker, wait_ms=10_000)
        (blocked,) = await wait_blocked(raw, 1)
        (lease,) = await asyncio.wait_for(claim, 8)
        assert lease.job.id == job.id
        (redis_s, redis_us) = await raw.time()
        assert int(redis_s) * 1000 + int(redis_us) // 1000 >= due_ms
        assert await last_commands(raw, {blocked}) == {blocked: "evalsha"}
    finally:
        await worker.close()
        await producer.close()


async def test_a_second_claimer_of_the_same_types_waits_in_a_group_and_both_are_served(
    own_redis: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    worker, producer = make_store(own_redis, key_prefix), make_store(own_redis, key_prefix)
    try:
        before = await blocked_ids(raw)
        claims = [claim_task(worker, wait_ms=10_000) for _ in range(3)]
        # One wait of its own (the first claimer), one shared by the others.
        blocked = await wait_blocked(raw, len(before) + 2)
        await asyncio.sleep(0.05)
        assert len(await blocked_ids(raw) - before) == 2, blocked
        jobs = [await service_for(producer).enqueue("t") for _ in range(3)]
        results = await asyncio.wait_for(asyncio.gather(*claims), 8)
        assert sorted(lease.job.id for result in results for lease in result) == sorted(
            job.id for job in jobs
        )
        assert all(len(result) == 1 for result in results)
    finally:
        await worker.close()
        await producer.close()


async def test_a_claim_that_finds_no_script_behind_its_wait_claims_again_in_full(
    own_redis: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    """After a Redis restart (here SCRIPT FLUSH) the claim behind the wait runs nothing."""
    worker, producer = make_store(own_redis, key_prefix), make_store(own_redis, key_prefix)
    try:
        claim = claim_task(worker, wait_ms=10_000)
        await wait_blocked(raw, 1)
        await raw.script_flush()
        job = await service_for(producer).enqueue("t")
        (lease,) = await asyncio.wait_for(claim, 5)
        assert lease.job.id == job.id
        stored = await worker.get(job.id)
        assert stored is not None
        assert stored.attempts == 1
    finally:
        await worker.close()
        await producer.close()


async def test_a_claim_cancelled_while_it_waits_takes_nothing(
    own_redis: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    worker, producer = make_store(own_redis, key_prefix), make_store(own_redis, key_prefix)
    try:
        claim = claim_task(worker, wait_ms=10_000)
        await wait_blocked(raw, 1)
        claim.cancel()
        with pytest.raises(asyncio.CancelledError):
            await claim

        async def unblocked() -> bool:
            return not await blocked_ids(raw)

        assert await until(unblocked)
        job = await service_for(producer).enqueue("t")
        (lease,) = await worker.claim(["t"], limit=1, lease_ms=LEASE_MS)
        assert lease.job.id == job.id
        assert lease.job.attempts == 1  # nobody had leased it before
    finally:
        await worker.close()
        await producer.close()
