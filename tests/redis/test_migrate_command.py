"""``jobqueue-server migrate``: the console script moves a one-shard queue into shards."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import EnqueueRequest, JobService, JobStatus, SystemClock, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings

pytestmark = pytest.mark.redis

SCRIPT = Path(sys.executable).parent / "jobqueue-server"


async def run_migrate(redis_url: str, prefix: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "JOBQUEUE_REDIS_URL": redis_url, "JOBQUEUE_KEY_PREFIX": prefix}
    env.pop("JOBQUEUE_REDIS_SHARDS", None)
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "migrate",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_migrate_counts_moves_and_is_safe_to_run_again(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    old = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    try:
        service = JobService(old, clock=SystemClock(), ids=UuidV7Generator())
        types = [f"m{i}" for i in range(5)]
        jobs = await service.enqueue_many([EnqueueRequest(type=t) for t in types for _ in range(4)])
        (running,) = await old.claim(["m0"], limit=1, lease_ms=60_000)
        record = "{" + key_prefix + "}:cfg"
        assert await raw.hget(record, "shards") == b"1"

        code, output = await run_migrate(redis_url, key_prefix, "--shards", "4", "--dry-run")
        assert code == 0, output
        assert "dry run: 19 pending job(s)" in output
        assert "1 running job(s)" in output
        assert await raw.hget(record, "shards") == b"1"  # nothing changed

        code, output = await run_migrate(redis_url, key_prefix, "--shards", "4")
        assert code == 0, output
        assert "moved 19 pending job(s)" in output
        assert "1 running job(s) left" in output
        assert await raw.hget(record, "shards") == b"4"

        code, output = await run_migrate(redis_url, key_prefix, "--shards", "4")
        assert code == 0, output
        assert "moved 0 pending job(s)" in output

        # A store with no setting now adopts the shards, and finds every job by its old id.
        new = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
        try:
            assert await new.check_layout() == 4
            found = [await new.get(job.id) for job in jobs]
            assert all(job is not None for job in found)
            leases = await new.claim(types, limit=100, lease_ms=60_000)
            assert len(leases) == 19
            assert running.job.id not in {lease.job.id for lease in leases}
            again = await new.get(running.job.id)
            assert again is not None
            assert again.status is JobStatus.RUNNING
        finally:
            await new.close()

        code, output = await run_migrate(redis_url, key_prefix, "--shards", "8")
        assert code == 1
        assert "recorded in Redis as 4" in output
    finally:
        await old.close()


async def test_migrate_needs_shards_and_a_redis(redis_url: str, key_prefix: str) -> None:
    code, output = await run_migrate(redis_url, key_prefix)
    assert code == 1
    assert "--shards" in output
