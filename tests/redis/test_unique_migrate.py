"""A unique key moves with its job when a queue migrates to shards: no lock stays behind."""

from __future__ import annotations

import redis.asyncio as aioredis

from jobqueue.domain import EnqueueRequest, JobQuery, JobService, SystemClock, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings, migrate_to_shards
from jobqueue.redis._shards import shard_of_type

SHARDS = 4


def service(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


async def test_a_unique_key_moves_with_its_job(redis_url: str, key_prefix: str) -> None:
    old = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    await service(old).enqueue(EnqueueRequest(type="sync", unique_key="customer:7"))
    await old.close()
    settings = RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=SHARDS)
    report = await migrate_to_shards(settings)
    assert report.moved == 1
    raw = aioredis.Redis.from_url(redis_url)
    new = RedisJobStore(settings)
    try:
        assert await raw.exists(f"{{{key_prefix}}}:u:sync/customer:7") == 0
        (moved,) = (await new.list_jobs(JobQuery(type="sync"))).jobs
        shard = shard_of_type("sync", SHARDS)
        assert await raw.get(f"{{{key_prefix}.{shard}}}:u:sync/customer:7") == moved.id.encode()
        again = await service(new).enqueue(EnqueueRequest(type="sync", unique_key="customer:7"))
        assert again.id == moved.id
    finally:
        await new.close()
        await raw.aclose()
