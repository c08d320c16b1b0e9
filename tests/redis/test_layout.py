"""The shard layout recorded in Redis: a process without a ``shards`` setting adopts it,
and one whose setting disagrees fails clearly instead of reading and writing elsewhere."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    JobStatus,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings, ShardLayoutMismatch
from jobqueue.redis._shards import shard_of_type

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def stores() -> AsyncIterator[list[RedisJobStore]]:
    made: list[RedisJobStore] = []
    yield made
    for store in made:
        await store.close()


def service_for(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


async def test_a_store_without_a_setting_adopts_the_recorded_shards(
    redis_url: str, key_prefix: str, stores: list[RedisJobStore], raw: aioredis.Redis
) -> None:
    producer = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=4))
    follower = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    stores += [producer, follower]
    types = [f"kind{i}" for i in range(6)]
    assert len({shard_of_type(t, 4) for t in types}) > 1
    jobs = await service_for(producer).enqueue_many([EnqueueRequest(type=t) for t in types])
    assert await raw.hget("{" + key_prefix + "}:cfg", "shards") == b"4"
    assert await follower.check_layout() == 4
    assert [await follower.get(job.id) for job in jobs] == jobs
    leases = await follower.claim(types, limit=10, lease_ms=30_000)
    assert sorted(lease.job.id for lease in leases) == sorted(job.id for job in jobs)


async def test_a_worker_started_before_the_first_producer_follows_its_layout(
    redis_url: str, key_prefix: str, stores: list[RedisJobStore]
) -> None:
    """Nothing recorded yet: the worker reads with one shard but looks again next call."""
    worker = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    producer = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=4))
    stores += [worker, producer]
    job_type = next(f"late{i}" for i in range(100) if shard_of_type(f"late{i}", 4) != 0)
    assert await worker.claim([job_type], limit=1, lease_ms=30_000) == []
    (job,) = await service_for(producer).enqueue_many([EnqueueRequest(type=job_type)])
    (lease,) = await worker.claim([job_type], limit=1, lease_ms=30_000)
    assert lease.job.id == job.id


async def test_an_explicit_setting_that_disagrees_fails_and_stores_nothing(
    redis_url: str, key_prefix: str, stores: list[RedisJobStore], raw: aioredis.Redis
) -> None:
    first = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=4))
    wrong = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=2))
    stores += [first, wrong]
    await service_for(first).enqueue("a")
    keys_before = sorted(await raw.keys(f"*{key_prefix}*"))
    with pytest.raises(ShardLayoutMismatch, match="recorded in Redis as 4") as caught:
        await service_for(wrong).enqueue("a")
    assert (caught.value.configured, caught.value.recorded) == (2, 4)
    with pytest.raises(ShardLayoutMismatch):
        await wrong.check_layout()
    with pytest.raises(ShardLayoutMismatch):
        await wrong.claim(["a"], limit=1, lease_ms=1_000)
    assert sorted(await raw.keys(f"*{key_prefix}*")) == keys_before
    assert await raw.hget("{" + key_prefix + "}:cfg", "shards") == b"4"


async def test_the_first_write_of_a_default_store_records_one_shard(
    redis_url: str, key_prefix: str, stores: list[RedisJobStore], raw: aioredis.Redis
) -> None:
    default = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    stores.append(default)
    assert await default.check_layout() == 1
    assert await raw.hget("{" + key_prefix + "}:cfg", "shards") is None  # reads record nothing
    await service_for(default).enqueue("a")
    assert await raw.hget("{" + key_prefix + "}:cfg", "shards") == b"1"
    sharded = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=8))
    stores.append(sharded)
    with pytest.raises(ShardLayoutMismatch, match="recorded in Redis as 1"):
        await sharded.stats()


async def test_a_sharded_store_refuses_an_unrecorded_one_shard_queue_until_migrated(
    redis_url: str, key_prefix: str, stores: list[RedisJobStore], raw: aioredis.Redis
) -> None:
    """A queue written before the record existed: its jobs would be stranded, so: migrate."""
    old = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=1))
    stores.append(old)
    await service_for(old).enqueue("a")
    await raw.hdel("{" + key_prefix + "}:cfg", "shards")  # as a release without the record left it
    sharded = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=8))
    stores.append(sharded)
    with pytest.raises(ShardLayoutMismatch, match="jobqueue-server migrate"):
        await sharded.check_layout()
    assert await raw.hget("{" + key_prefix + "}:cfg", "shards") is None


async def test_the_example_worker_runs_jobs_of_a_sharded_queue_with_no_shards_setting(
    redis_url: str, key_prefix: str, stores: list[RedisJobStore]
) -> None:
    """A second process configured as the README says (URL and prefix only)."""
    producer = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix, shards=4))
    stores.append(producer)
    assert shard_of_type("send_email", 4) != 0  # a one-shard reader would never see it
    service = service_for(producer)
    job = await service.enqueue("send_email", json.dumps({"to": "ada@example.com"}).encode())
    env = {
        **os.environ,
        "JOBQUEUE_REDIS_URL": redis_url,
        "JOBQUEUE_KEY_PREFIX": key_prefix,
        "JOBQUEUE_CONCURRENCY": "4",
    }
    env.pop("JOBQUEUE_REDIS_SHARDS", None)
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobqueue_example_worker",
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        done = None
        for _ in range(300):  # bounded: 30 s
            done = await producer.get(job.id)
            if done is not None and done.status.is_terminal:
                break
            await asyncio.sleep(0.1)
        assert done is not None
        assert done.status is JobStatus.COMPLETED, done
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 20)
