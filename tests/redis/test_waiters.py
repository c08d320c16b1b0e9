"""Idle waiters of one Redis store share connections: blocking claims, watches, cancellations.

Each idle claim and each watch used to hold a connection of its own from a
pool capped at 64: 36 of 100 idle claims failed with "Too many connections".
These tests count connections on the server side (INFO clients, CLIENT LIST),
relative to what was open before they started.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    JobStatus,
    Lease,
    StoreUnavailable,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests._redis_clients import (
    clients,
    evalsha_calls,
    numsub,
    peak_clients,
    subscribers,
    until,
)
from tests._redis_server import RedisProcess, free_port

pytestmark = pytest.mark.redis

WAITERS = 1_000
MAX_CONNECTIONS = 10
"""What one store may open on the server while 1,000 callers wait on it."""


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.ping()
    yield client
    await client.aclose()


def make_store(url: str, prefix: str, **settings: Any) -> RedisJobStore:
    return RedisJobStore(
        RedisStoreSettings(url=url, key_prefix=prefix, **settings), clock=SystemClock()
    )


def service_for(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


def failures(results: Sequence[object]) -> Counter[str]:
    return Counter(f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException))


async def test_a_thousand_idle_claims_share_a_few_connections(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    store = make_store(redis_url, key_prefix)
    baseline, _ = await clients(raw)
    claims = [
        asyncio.create_task(store.claim(["idle"], limit=1, lease_ms=60_000, wait_ms=2_000))
        for _ in range(WAITERS)
    ]
    peak, blocked = await peak_clients(raw, claims, baseline)
    results = await asyncio.gather(*claims, return_exceptions=True)
    assert not failures(results)
    assert all(result == [] for result in results)
    assert peak <= MAX_CONNECTIONS
    assert 1 <= blocked <= 2  # one shared BLPOP (and at most one re-issued as it returns)
    await store.close()


async def test_a_job_enqueued_while_a_thousand_claims_wait_is_claimed_once_and_promptly(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    store, producer = make_store(redis_url, key_prefix), make_store(redis_url, key_prefix)
    await store.claim(["idle"], limit=1, lease_ms=60_000)  # loads the script: EVALSHA from now on
    scripts_before = await evalsha_calls(raw)
    claims = [
        asyncio.create_task(store.claim(["idle"], limit=1, lease_ms=60_000, wait_ms=3_000))
        for _ in range(WAITERS)
    ]

    async def all_waiting() -> bool:
        if any(claim.done() for claim in claims):
            return True  # something ended early: the assertions below say what
        return await evalsha_calls(raw) >= scripts_before + WAITERS and (await clients(raw))[1] > 0

    assert await until(all_waiting)
    loop = asyncio.get_running_loop()
    enqueued_at = loop.time()
    job = await service_for(producer).enqueue("idle")
    await asyncio.wait(claims, timeout=2.5, return_when=asyncio.FIRST_COMPLETED)
    latency_s = loop.time() - enqueued_at
    results = await asyncio.gather(*claims, return_exceptions=True)
    assert not failures(results)
    leases = [lease for result in results if isinstance(result, list) for lease in result]
    assert [lease.job.id for lease in leases] == [job.id]
    print(f"claim latency after enqueue with {WAITERS} waiters: {latency_s * 1000:.1f} ms")
    assert latency_s < 1.0
    await store.close()
    await producer.close()


async def test_a_burst_wakes_as_many_waiting_claimers_as_it_needs(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    """One token wakes one waiter; each claimer that leaves work behind passes a token on."""
    store, producer = make_store(redis_url, key_prefix), make_store(redis_url, key_prefix)
    claims = [
        asyncio.create_task(store.claim(["burst"], limit=1, lease_ms=60_000, wait_ms=5_000))
        for _ in range(10)
    ]
    assert await until(lambda: _blocked(raw))
    jobs = await service_for(producer).enqueue_many([EnqueueRequest(type="burst")] * 5)
    claimed: list[Lease] = []
    for _ in range(200):  # bounded: 4 s
        claimed = [lease for claim in claims if claim.done() for lease in claim.result()]
        if len(claimed) == len(jobs):
            break
        await asyncio.sleep(0.02)
    assert sorted(lease.job.id for lease in claimed) == sorted(job.id for job in jobs)
    results = await asyncio.gather(*claims)
    assert sorted(len(result) for result in results) == [0] * 5 + [1] * 5
    await store.close()
    await producer.close()


async def test_a_token_nobody_is_left_to_use_is_pushed_back(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    """A shared wait outlives a claimer that gave up; what it then receives is not lost."""
    store, producer = make_store(redis_url, key_prefix), make_store(redis_url, key_prefix)
    claim = asyncio.create_task(store.claim(["gone"], limit=1, lease_ms=60_000, wait_ms=1_500))
    assert await until(lambda: _blocked(raw))
    claim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await claim
    job = await service_for(producer).enqueue("gone")
    wake_list = "{" + key_prefix + "}:w:gone"
    assert await until(lambda: _has_token(raw, wake_list), within_s=5.0)
    # Whoever waits next, here or in another process, wakes at once and claims it.
    (lease,) = await producer.claim(["gone"], limit=1, lease_ms=60_000, wait_ms=5_000)
    assert lease.job.id == job.id
    await store.close()
    await producer.close()


async def _blocked(raw: aioredis.Redis) -> bool:
    return (await clients(raw))[1] > 0


async def _has_token(raw: aioredis.Redis, key: str) -> bool:
    return int(await raw.llen(key)) == 1 and (await clients(raw))[1] == 0


async def test_claims_on_more_type_sets_than_connections_wait_and_never_raise(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    store = make_store(redis_url, key_prefix, max_connections=2)
    claims = [
        asyncio.create_task(store.claim([f"kind{i}"], limit=1, lease_ms=60_000, wait_ms=1_000))
        for i in range(8)
    ]
    _, blocked = await peak_clients(raw, claims, 0)
    results = await asyncio.gather(*claims, return_exceptions=True)
    assert not failures(results)
    assert all(result == [] for result in results)
    assert blocked <= 2
    await store.close()


async def test_a_thousand_watches_share_one_subscriber(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    store, producer = make_store(redis_url, key_prefix), make_store(redis_url, key_prefix)
    service = service_for(producer)
    jobs = []
    for _ in range(WAITERS // 500):
        jobs += await service.enqueue_many([EnqueueRequest(type="watched")] * 500)
    baseline, _ = await clients(raw)
    seen: dict[str, list[JobStatus]] = {job.id: [] for job in jobs}

    async def follow(job_id: str) -> None:
        async for job in store.watch(job_id):
            seen[job_id].append(job.status)

    watches = [asyncio.create_task(follow(job.id)) for job in jobs]

    async def all_started() -> bool:
        return any(watch.done() for watch in watches) or all(seen.values())

    assert await until(all_started, within_s=20.0)
    failed = failures([watch.exception() for watch in watches if watch.done()])
    assert not failed
    connected, _ = await clients(raw)
    assert connected - baseline <= MAX_CONNECTIONS
    assert len(await subscribers(raw)) == 1
    assert await numsub(raw, "{" + key_prefix + "}:ev:" + jobs[0].id) == 1
    await asyncio.gather(*(producer.cancel(job.id) for job in jobs))
    await asyncio.wait_for(asyncio.gather(*watches), 30)
    assert all(statuses == [JobStatus.PENDING, JobStatus.CANCELLED] for statuses in seen.values())

    async def unsubscribed() -> bool:
        return not await raw.pubsub_channels("{" + key_prefix + "}:ev:*")

    assert await until(unsubscribed)
    await store.close()
    await producer.close()


async def test_the_subscriber_comes_back_after_its_connection_is_killed(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    store = make_store(redis_url, key_prefix)
    service = service_for(store)
    job = await service.enqueue("killed")
    cancels_channel = "{" + key_prefix + "}:cancels"
    watch_channel = "{" + key_prefix + "}:ev:" + job.id
    received: list[str] = []
    statuses: list[JobStatus] = []

    async def collect() -> None:
        async for job_id in store.cancellations():
            received.append(job_id)

    async def follow() -> None:
        async for seen in store.watch(job.id):
            statuses.append(seen.status)

    tasks = [asyncio.create_task(collect()), asyncio.create_task(follow())]

    async def both_subscribed() -> bool:
        return await numsub(raw, cancels_channel) == 1 and await numsub(raw, watch_channel) == 1

    assert await until(both_subscribed)
    (before,) = await subscribers(raw)
    assert await raw.client_kill_filter(_type="pubsub") == 1

    async def resubscribed() -> bool:
        now = await subscribers(raw)
        return [c["id"] for c in now] not in ([], [before["id"]]) and await both_subscribed()

    assert await until(resubscribed)
    await raw.publish(cancels_channel, "some-job")
    for _ in range(250):  # bounded: 5 s
        if received:
            break
        await asyncio.sleep(0.02)
    assert received == ["some-job"]
    assert statuses == [JobStatus.PENDING]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await store.close()


async def test_closing_the_store_ends_its_cancellation_streams(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    store = make_store(redis_url, key_prefix)
    stream = store.cancellations()
    first = asyncio.create_task(anext(stream, None))

    async def subscribed() -> bool:
        return await numsub(raw, "{" + key_prefix + "}:cancels") == 1

    assert await until(subscribed)
    await store.close()
    assert await asyncio.wait_for(first, 5) is None
    assert [job_id async for job_id in store.cancellations()] == []


async def test_the_subscriber_waits_for_redis_to_come_up(redis_url: str, key_prefix: str) -> None:
    """A watch needs Redis to begin; a cancellation stream waits for it, with backoff."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server to start one late")
    port = free_port()
    store = make_store(f"redis://127.0.0.1:{port}/0", key_prefix, connect_timeout_ms=500)
    with pytest.raises(StoreUnavailable):
        await anext(store.watch("0190d5f4-0000-7000-8000-000000000000"))
    received: list[str] = []

    async def collect() -> None:
        async for job_id in store.cancellations():
            received.append(job_id)

    collector = asyncio.create_task(collect())
    server = RedisProcess(port=port)
    raw = aioredis.Redis.from_url(server.url)
    channel = "{" + key_prefix + "}:cancels"
    try:
        server.start()

        async def subscribed() -> bool:
            return await numsub(raw, channel) == 1

        assert await until(subscribed, within_s=15.0)
        await raw.publish(channel, "late-job")
        for _ in range(250):  # bounded: 5 s
            if received:
                break
            await asyncio.sleep(0.02)
        assert received == ["late-job"]
    finally:
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        await store.close()
        await raw.aclose()
        server.close()
