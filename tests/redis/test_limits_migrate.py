"""Migrating a queue to shards moves its types' limits, per type and per key.

Before, ``migrate_to_shards`` left ``lm:<type>`` in the old layout, where no
sharded claim reads it: every limited type ran unlimited after the migration.
"""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from jobqueue.domain import EnqueueRequest, JobService, SystemClock, TypeLimits, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings, migrate_to_shards
from tests._redis_groups import ClusterProcesses
from tests.redis._cluster import make_store

SHARDS = 4
CAPPED = TypeLimits(concurrency=2, rate=100, rate_interval_ms=2_000)
PER_KEY = TypeLimits(key_concurrency=1, key_rate=5, key_rate_interval_ms=500)
ODD = "img[x]*?"  # glob characters in a type name: matched literally, not as a pattern


def service(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


async def test_limits_move_to_their_types_shard_and_hold_there(
    redis_url: str, key_prefix: str
) -> None:
    old = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    await old.set_type_limits("capped", CAPPED)
    await old.set_type_limits("idle", PER_KEY)  # no job of it yet: limits set ahead
    await old.set_type_limits(ODD, CAPPED)
    await old.set_type_limits("cleared", CAPPED)
    await old.set_type_limits("cleared", TypeLimits())  # its hash keeps no limit
    await service(old).enqueue_many([EnqueueRequest(type="capped") for _ in range(5)])
    await service(old).enqueue_many(
        [EnqueueRequest(type="keyed", limit_key=k) for k in ("a", "a", "b")]
    )
    await old.set_type_limits("keyed", PER_KEY)
    await old.close()

    settings = RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=SHARDS)
    assert (await migrate_to_shards(settings)).moved == 8
    new = RedisJobStore(settings)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        for job_type, limits in (
            ("capped", CAPPED),
            ("idle", PER_KEY),
            (ODD, CAPPED),
            ("keyed", PER_KEY),
            ("cleared", TypeLimits()),
        ):
            assert await new.type_limits(job_type) == limits, job_type
            fields = await raw.hkeys(f"{{{key_prefix}}}:lm:{job_type}")
            assert set(fields) <= {b"kx"}, job_type  # no limit left in the old layout
        # Enforced by the shards' claims: 2 of the 5 capped, 1 per key of the keyed.
        leases = await new.claim(["capped", "keyed"], limit=20, lease_ms=60_000)
        by_type = sorted(lease.job.type for lease in leases)
        assert by_type == ["capped", "capped", "keyed", "keyed"]
        assert sorted(lease.job.limit_key or "" for lease in leases) == ["", "", "a", "b"]
        # A second run changes nothing.
        await migrate_to_shards(settings)
        assert await new.type_limits("capped") == CAPPED
    finally:
        await new.close()
        await raw.aclose()


async def test_limits_already_set_in_the_shard_win_over_the_old_layouts(
    redis_url: str, key_prefix: str
) -> None:
    """As after a run stopped between copying and clearing, then limits changed."""
    old = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    await old.set_type_limits("t", CAPPED)
    await old.close()
    settings = RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=SHARDS)
    await migrate_to_shards(settings)
    newer = TypeLimits(concurrency=7)
    new = RedisJobStore(settings)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        await new.set_type_limits("t", newer)
        await raw.hset(f"{{{key_prefix}}}:lm:t", mapping={"c": 2})  # a stale old copy
        await migrate_to_shards(settings)
        assert await new.type_limits("t") == newer
        assert await raw.hkeys(f"{{{key_prefix}}}:lm:t") == []
    finally:
        await new.close()
        await raw.aclose()


async def test_limits_move_on_a_cluster(cluster: ClusterProcesses) -> None:
    """The SCAN for ``lm:`` keys reaches the old slot's node, whichever it is."""
    prefix = f"jqlm-{uuid.uuid4().hex[:8]}"
    old = make_store(cluster, prefix, shards=1)
    try:
        await old.set_type_limits("capped", CAPPED)
        await old.set_type_limits(ODD, PER_KEY)
    finally:
        await old.close()
    await migrate_to_shards(RedisStoreSettings(url=cluster.url, key_prefix=prefix, shards=8))
    new = make_store(cluster, prefix, shards=8)
    try:
        assert await new.type_limits("capped") == CAPPED
        assert await new.type_limits(ODD) == PER_KEY
    finally:
        await new.close()
