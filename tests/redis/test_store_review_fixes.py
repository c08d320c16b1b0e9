"""Redis-only checks of the store's indexes after a REPLACE (keys no other store has)."""

from __future__ import annotations

import redis.asyncio as aioredis

from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    JobStatus,
    OnConflict,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings


async def test_a_replaced_holder_takes_its_priority_level_with_it(
    redis_url: str, key_prefix: str
) -> None:
    store = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    raw = aioredis.Redis.from_url(redis_url)
    ns = "{" + key_prefix + "}:"
    try:
        service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
        old = await service.enqueue(
            EnqueueRequest(type="lv", priority=7, unique_key="K", on_conflict=OnConflict.REPLACE)
        )
        await service.enqueue(
            EnqueueRequest(type="lv", unique_key="K", on_conflict=OnConflict.REPLACE)
        )
        replaced = await store.get(old.id)
        assert replaced is not None
        assert replaced.status is JobStatus.CANCELLED
        assert await raw.exists(ns + "qp:7:lv") == 0
        assert await raw.zrange(ns + "pl:lv", 0, -1) == []
    finally:
        await store.close()
        await raw.aclose()
