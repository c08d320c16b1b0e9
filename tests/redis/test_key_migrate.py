"""Migrating a queue to shards moves keyed jobs into their key's queue in the new shard."""

from __future__ import annotations

from collections import Counter

import redis.asyncio as aioredis

from jobqueue.domain import (
    EnqueueRequest,
    JobQuery,
    JobService,
    JobStatus,
    SystemClock,
    TypeLimits,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings, migrate_to_shards

SHARDS = 4


async def test_keyed_jobs_move_with_their_keys(redis_url: str, key_prefix: str) -> None:
    old = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    service = JobService(old, clock=SystemClock(), ids=UuidV7Generator())
    await service.enqueue_many(
        [EnqueueRequest(type="kt", limit_key=key) for key in ("acme", "acme", "zeta")]
        + [EnqueueRequest(type="kt")]
    )
    settings = RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=SHARDS)
    # A dry run counts keyed jobs with the rest.
    assert (await migrate_to_shards(settings, dry_run=True)).moved == 4
    await old.close()
    assert (await migrate_to_shards(settings)).moved == 4
    raw = aioredis.Redis.from_url(redis_url)
    new = RedisJobStore(settings)
    try:
        # Nothing keyed is left in the old layout's queues.
        assert await raw.exists(f"{{{key_prefix}}}:qk:kt", f"{{{key_prefix}}}:kq:kt/acme") == 0
        page = await new.list_jobs(JobQuery(type="kt", status=JobStatus.PENDING))
        assert Counter(job.limit_key for job in page.jobs) == {"acme": 2, "zeta": 1, None: 1}
        await new.set_type_limits("kt", TypeLimits(key_concurrency=1))
        leases = await new.claim(["kt"], limit=10, lease_ms=30_000)
        assert Counter(lease.job.limit_key for lease in leases) == {"acme": 1, "zeta": 1, None: 1}
    finally:
        await new.close()
        await raw.aclose()
