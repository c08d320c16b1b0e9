"""Migrating a queue to shards moves what the old layout holds, as it was.

A unique key moves with its job (no lock stays behind, none is decided
again), priority queues move, and so do paused types and schedules.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from jobqueue.domain import (
    EnqueueRequest,
    JobQuery,
    JobService,
    JobTemplate,
    Outcome,
    OutcomeKind,
    ScheduleService,
    SystemClock,
    UniqueScope,
    UuidV7Generator,
)
from jobqueue.redis import (
    RedisJobStore,
    RedisScheduleStore,
    RedisStoreSettings,
    migrate_to_shards,
)
from jobqueue.redis._shards import shard_of_type
from jobqueue_server._cron import CronsimParser

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


async def test_jobs_sharing_a_key_both_move_and_the_lock_stays_with_its_holder(
    redis_url: str, key_prefix: str
) -> None:
    """A PENDING-scoped key: A was claimed and retried, B took the key. Both move, as
    they were; the lock names B in the new shard, and nothing answers one with the other."""
    old = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    first = await service(old).enqueue(
        EnqueueRequest(type="mu", payload=b"A", unique_key="K", unique_scope=UniqueScope.PENDING)
    )
    (lease,) = await old.claim(["mu"], limit=1, lease_ms=60_000)
    retry = Outcome(job_id=first.id, token=lease.token, kind=OutcomeKind.RETRY, retry_delay_ms=0)
    await old.settle([retry])
    second = await service(old).enqueue(
        EnqueueRequest(type="mu", payload=b"B", unique_key="K", unique_scope=UniqueScope.PENDING)
    )
    assert second.id != first.id
    await old.close()
    settings = RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=SHARDS)
    assert (await migrate_to_shards(settings)).moved == 2
    raw = aioredis.Redis.from_url(redis_url)
    new = RedisJobStore(settings)
    try:
        moved_first, moved_second = await new.get(first.id), await new.get(second.id)
        assert moved_first is not None
        assert moved_second is not None
        assert (moved_first.payload, moved_second.payload) == (b"A", b"B")
        assert moved_first.attempts == 1
        assert moved_first.unique is not None
        assert moved_first.unique.key == "K"
        shard = shard_of_type("mu", SHARDS)
        lock = await raw.get(f"{{{key_prefix}.{shard}}}:u:mu/K")
        assert lock == moved_second.id.encode()
        leases = await new.claim(["mu"], limit=5, lease_ms=60_000)
        assert sorted(lease.job.payload for lease in leases) == [b"A", b"B"]
    finally:
        await new.close()
        await raw.aclose()


async def test_priority_jobs_move_and_a_dry_run_counts_them(
    redis_url: str, key_prefix: str
) -> None:
    old = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    await service(old).enqueue_many(
        [
            EnqueueRequest(type="mt", payload=b"plain"),
            EnqueueRequest(type="mt", payload=b"urgent", priority=50),
            EnqueueRequest(type="mt", payload=b"low", priority=-3),
        ]
    )
    await old.close()
    settings = RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=SHARDS)
    assert (await migrate_to_shards(settings, dry_run=True)).moved == 3
    assert (await migrate_to_shards(settings)).moved == 3
    raw = aioredis.Redis.from_url(redis_url)
    new = RedisJobStore(settings)
    try:
        left = [key async for key in raw.scan_iter(match=f"{{{key_prefix}}}:q*")]
        assert left == []
        assert await raw.exists(f"{{{key_prefix}}}:pl:mt") == 0
        leases = await new.claim(["mt"], limit=5, lease_ms=60_000)
        assert [lease.job.payload for lease in leases] == [b"urgent", b"plain", b"low"]
        assert [lease.job.priority for lease in leases] == [50, 0, -3]
    finally:
        await new.close()
        await raw.aclose()


async def test_paused_types_and_schedules_move_to_their_types_shard(
    redis_url: str, key_prefix: str
) -> None:
    old = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    await old.pause_type("mt")
    made = await schedules_of(old).create(
        name="n", template=JobTemplate(type="mt", headers={"team": "ops"}), interval_ms=60_000
    )
    await service(old).enqueue("mt", b"plain")
    await old.close()
    settings = RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=SHARDS)
    await migrate_to_shards(settings)
    raw = aioredis.Redis.from_url(redis_url)
    new = RedisJobStore(settings)
    try:
        assert await new.paused_types() == ["mt"]
        assert await new.claim(["mt"], limit=5, lease_ms=60_000) == []
        for key in ("pz", "sa", "sx", f"sc:{made.id}"):
            assert await raw.exists(f"{{{key_prefix}}}:{key}") == 0, key
        (moved,) = await schedules_of(new).list_schedules()
        assert moved.name == "n"
        assert moved.template.headers == {"team": "ops"}
        job = await schedules_of(new).trigger(moved.id)
        await new.resume_type("mt")
        leases = await new.claim(["mt"], limit=5, lease_ms=60_000)
        assert sorted(lease.job.payload for lease in leases) == [b"", b"plain"]
        (fired,) = [lease.job for lease in leases if lease.job.id == job.id]
        assert fired.headers == {"team": "ops"}
    finally:
        await new.close()
        await raw.aclose()


def schedules_of(store: RedisJobStore) -> ScheduleService:
    return ScheduleService(
        RedisScheduleStore(store),
        store,
        cron=CronsimParser(),
        clock=SystemClock(),
        ids=UuidV7Generator(),
    )
