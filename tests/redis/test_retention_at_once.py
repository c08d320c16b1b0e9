"""A retention that ends within the finishing script itself (the flaky forgetful machine).

With a 1 ms retention, Redis 7.0's PEXPIRE deletes the job hash on the spot
about once in 10,000 finishes: it adds the retention to one reading of its
clock and checks the result against a later one, and the key goes when the
millisecond turned in between. Every read of the hash after the PEXPIRE in the
same script then found nothing: cancel.lua replied 'ok' with an empty hash
(``KeyError: b't'`` in the stateful test with retention 1 ms), and finish()
lost the idempotency key it was about to expire and the watchers it was about
to tell. A retention of 0, written to the shared settings as a server would,
makes that deletion certain, so each case here fails every time on the old
scripts instead of once in thousands of runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    JobStatus,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings

pytestmark = pytest.mark.redis


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    store = RedisJobStore(
        RedisStoreSettings(url=redis_url, key_prefix=key_prefix, retention_ms=1),
        clock=SystemClock(),
    )
    yield store
    await store.close()


async def enqueue_keyed(store: RedisJobStore, raw: aioredis.Redis, ns: str) -> str:
    """A PENDING job with an idempotency key; then a retention of 0, over at every finish."""
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    [job] = await service.enqueue_many(
        [EnqueueRequest(type="t", payload=b"x", idempotency_key="k")]
    )
    # After the store's first call, which publishes its own settings to cfg.
    await raw.hset(ns + "cfg", "retention_ms", 0)
    return job.id


async def test_cancel_replies_with_the_job_its_retention_forgets_at_once(
    store: RedisJobStore, raw: aioredis.Redis, key_prefix: str
) -> None:
    ns = "{" + key_prefix + "}:"
    job_id = await enqueue_keyed(store, raw, ns)
    cancelled = await store.cancel(job_id)
    assert (cancelled.id, cancelled.status, cancelled.idempotency_key) == (
        job_id,
        JobStatus.CANCELLED,
        "k",
    )
    assert await store.get(job_id) is None
    # Expired with the job, not left behind with no expiry.
    assert await raw.exists(ns + "k:t/k") == 0


async def test_the_sweep_forgets_the_idempotency_key_of_a_job_it_finishes(
    store: RedisJobStore, raw: aioredis.Redis, key_prefix: str
) -> None:
    """requeue.lua finishes a cancelled job whose lease lapsed; finish() reads its key itself."""
    ns = "{" + key_prefix + "}:"
    job_id = await enqueue_keyed(store, raw, ns)
    [lease] = await store.claim(["t"], limit=1, lease_ms=1)
    assert (await store.cancel(job_id)).cancel_requested
    for _ in range(1_000):  # bounded: the 1 ms lease lapses within a few rounds
        if await store.requeue_expired() == 1:
            break
    assert lease.job.id == job_id
    assert await raw.exists(ns + "j:" + job_id) == 0
    assert await raw.exists(ns + "k:t/k") == 0


async def test_watchers_hear_of_a_finish_whose_retention_ends_at_once(
    store: RedisJobStore, raw: aioredis.Redis, key_prefix: str
) -> None:
    """settle.lua's finish: it told watchers only after the PEXPIRE, of a hash gone by then."""
    ns = "{" + key_prefix + "}:"
    job_id = await enqueue_keyed(store, raw, ns)
    [lease] = await store.claim(["t"], limit=1, lease_ms=60_000)
    await raw.hset(ns + "j:" + job_id, "w", 1)  # one watcher, as watchers.lua counts them
    pubsub = raw.pubsub()
    await pubsub.subscribe(ns + "ev:" + job_id)
    try:
        done = Outcome(job_id=job_id, token=lease.token, kind=OutcomeKind.COMPLETE)
        assert await store.settle([done]) == [True]
        heard: list[bytes] = []
        async with asyncio.timeout(10):  # a bound on a hang, not a measure of speed
            while not heard:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    heard.append(message["channel"])
        assert heard == [(ns + "ev:" + job_id).encode()]
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
