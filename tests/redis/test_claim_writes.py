"""What claim.lua and settle.lua write per job, and what they tell (issue 17: commands per job).

A lease writes its attempt with its other fields, and reads whether the job
has watchers with the rest of them: no HINCRBY and no HEXISTS per job; a
settle reads the watchers with the lease it checks. The watchers of a job
still hear of its lease and of its end, and only theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings

pytestmark = pytest.mark.redis


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    store = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    yield store
    await store.close()


async def calls(raw: aioredis.Redis, command: str) -> int:
    stats = await raw.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def heard_until(raw: aioredis.Redis, pubsub: PubSub, marker: str) -> list[bytes]:
    """The channels heard, up to ``marker``, published now: after the script's own messages."""
    await raw.publish(marker, 1)
    heard: list[bytes] = []
    async with asyncio.timeout(10):  # a bound on a hang, not a measure of speed
        while marker.encode() not in heard:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                heard.append(message["channel"])
    return heard


async def test_a_claim_tells_the_watchers_of_its_jobs_and_no_one_else(
    store: RedisJobStore, raw: aioredis.Redis, key_prefix: str
) -> None:
    ns = "{" + key_prefix + "}:"
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    watched, quiet = await service.enqueue("t", b""), await service.enqueue("t", b"")
    await raw.hset(ns + "j:" + watched.id, "w", 1)  # one watcher, as watchers.lua counts them
    pubsub = raw.pubsub()
    marker = ns + "test-marker"
    await pubsub.subscribe(ns + "ev:" + watched.id, ns + "ev:" + quiet.id, marker)
    try:
        leases = await store.claim(["t"], limit=2, lease_ms=60_000)
        assert len(leases) == 2
        heard = await heard_until(raw, pubsub, marker)
        assert heard == [(ns + "ev:" + watched.id).encode(), marker.encode()]
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_a_claim_counts_attempts_without_a_command_per_job(
    store: RedisJobStore, raw: aioredis.Redis
) -> None:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    await service.enqueue_many([EnqueueRequest(type="t", payload=b"") for _ in range(50)])
    before = {name: await calls(raw, name) for name in ("hincrby", "hexists")}
    leases = await store.claim(["t"], limit=50, lease_ms=60_000)
    assert {name: await calls(raw, name) - count for name, count in before.items()} == {
        "hincrby": 0,
        "hexists": 0,
    }
    assert [lease.job.attempts for lease in leases] == [1] * 50
    # Given back untried, then leased again: the attempt was returned, then counted.
    release = [
        Outcome(job_id=x.job.id, token=x.token, kind=OutcomeKind.RELEASE) for x in leases[:5]
    ]
    assert await store.settle(release) == [True] * 5
    again = await store.claim(["t"], limit=5, lease_ms=60_000)
    assert [lease.job.attempts for lease in again] == [1] * 5
    retry = [Outcome(job_id=x.job.id, token=x.token, kind=OutcomeKind.RETRY) for x in again]
    assert await store.settle(retry) == [True] * 5
    third = await store.claim(["t"], limit=5, lease_ms=60_000)
    assert [lease.job.attempts for lease in third] == [2] * 5


async def test_a_settle_tells_watchers_without_a_command_per_job(
    store: RedisJobStore, raw: aioredis.Redis, key_prefix: str
) -> None:
    ns = "{" + key_prefix + "}:"
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    jobs = await service.enqueue_many([EnqueueRequest(type="t", payload=b"") for _ in range(20)])
    leases = await store.claim(["t"], limit=20, lease_ms=60_000)
    # One watched job completes, the other is retried: both ways out of a lease tell.
    completed, retried = jobs[3].id, jobs[4].id
    for watched in (completed, retried):
        await raw.hset(ns + "j:" + watched, "w", 1)
    pubsub = raw.pubsub()
    marker = ns + "test-marker"
    await pubsub.subscribe(*(ns + "ev:" + job.id for job in jobs), marker)
    try:
        before = await calls(raw, "hexists")
        done = [
            Outcome(
                job_id=x.job.id,
                token=x.token,
                kind=OutcomeKind.RETRY if x.job.id == retried else OutcomeKind.COMPLETE,
            )
            for x in leases
        ]
        assert await store.settle(done) == [True] * 20
        assert await calls(raw, "hexists") == before
        heard = await heard_until(raw, pubsub, marker)
        assert sorted(heard[:-1]) == sorted((ns + "ev:" + x).encode() for x in (completed, retried))
        assert heard[-1] == marker.encode()
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
