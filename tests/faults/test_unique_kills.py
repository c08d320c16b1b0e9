"""Unique jobs while worker processes are SIGKILLed: no unique lock outlives its job.

3 ledger workers (Redis ``StoreSource``, 1 s leases, 400 ms jobs) take unique
jobs that this test enqueues under 12 keys with random scopes and conflict
policies, while a chaos loop SIGKILLs a random worker every ~0.6 s and starts a
replacement. Then every worker is SIGKILLed at once, mid-job. At each of three
moments every ``u:`` key in Redis must name a job that exists and is in its
scope (PENDING for PENDING; PENDING or RUNNING for ACTIVE): right after the
kills (leases of dead workers still running), after the sweep handed every
expired lease back, and - once a fresh worker drained every job - there must
be no ``u:`` key at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from pathlib import Path

import pytest
import redis

from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    JobStatus,
    OnConflict,
    SystemClock,
    UniqueConflict,
    UniqueScope,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests._redis_server import RedisProcess
from tests.faults._processes import WorkerPool
from tests.faults._scenario import report, scale
from tests.faults.ledger_worker import WORK_TYPE

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(120, 600))]

WORKERS = 3
KEYS = [f"customer:{n}" for n in range(12)]
KILLS = scale(8, 60)
KILL_EVERY_S = 0.6
LEASE_MS = 1_000


def locks(client: redis.Redis, prefix: str) -> dict[str, str]:
    head = f"{{{prefix}}}:u:"
    found: dict[str, str] = {}
    for name in client.scan_iter(match=head + "*", count=1_000):
        holder = client.get(name)
        if holder is not None:  # a debounce could lapse between SCAN and GET; none is used here
            found[_text(name)[len(head) :]] = _text(holder)
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def check_holders(store: RedisJobStore, held: dict[str, str]) -> dict[str, int]:
    """Every lock names a job in its scope; returns how many holders were in each status."""
    statuses: dict[str, int] = {}
    for key, holder_id in held.items():
        job = await store.get(holder_id)
        assert job is not None, f"lock {key} names a job that is gone: {holder_id}"
        assert job.unique is not None
        assert f"{job.type}/{job.unique.key}" == key  # locks are per type: u:<type>/<key>
        in_scope = (
            (JobStatus.PENDING,)
            if job.unique.scope is UniqueScope.PENDING
            else (JobStatus.PENDING, JobStatus.RUNNING)
        )
        assert job.status in in_scope, f"lock {key}: {holder_id} is {job.status.name}"
        statuses[job.status.name] = statuses.get(job.status.name, 0) + 1
    return statuses


async def test_no_unique_lock_outlives_its_job_when_workers_are_killed(
    redis_plain: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    settings = RedisStoreSettings(url=redis_plain.url, key_prefix=prefix)
    store = RedisJobStore(settings)
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    client = redis.Redis.from_url(redis_plain.url)
    pool = WorkerPool.on_redis(
        tmp_path, redis_plain.url, prefix, concurrency=4, lease_ms=LEASE_MS, work_ms=400
    )
    rng = random.Random(11)
    enqueued = conflicts = 0

    async def produce(until: float) -> None:
        nonlocal enqueued, conflicts
        while time.monotonic() < until:
            request = EnqueueRequest(
                type=WORK_TYPE,
                max_attempts=rng.choice([1, 2, 3]),
                unique_key=rng.choice(KEYS),
                unique_scope=rng.choice([UniqueScope.PENDING, UniqueScope.ACTIVE]),
                on_conflict=rng.choice(list(OnConflict)),
            )
            try:
                await service.enqueue(request)
                enqueued += 1
            except UniqueConflict:
                conflicts += 1
            await asyncio.sleep(0.01)

    try:
        pool.spawn_many(WORKERS)
        # Production runs until every worker is dead, so jobs are in flight then.
        producing = asyncio.create_task(produce(time.monotonic() + 3_600))
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.5, 1.5) * KILL_EVERY_S)
            victims = pool.alive
            if victims:
                pool.kill(rng.choice(victims))
            pool.spawn()
        pool.wait_ready()
        await asyncio.sleep(0.5)  # the replacements take jobs
        for pid in pool.alive:  # every worker dies mid-job
            pool.kill(pid)
        producing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producing

        after_kills = await check_holders(store, locks(client, prefix))
        # The sweep hands every dead worker's lease back (or fails it on its last attempt).
        await asyncio.sleep(LEASE_MS / 1000 + 0.1)
        swept = 0
        while n := await store.requeue_expired():
            swept += n
        after_sweep = await check_holders(store, locks(client, prefix))
        assert "RUNNING" not in after_sweep

        # A fresh worker drains every job: then no lock may remain.
        pool.spawn_many(1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stats = await store.stats()
            live = sum(row.pending + row.scheduled + row.running for row in stats.types)
            if live == 0:
                break
            await asyncio.sleep(0.2)
        assert live == 0, stats
        assert locks(client, prefix) == {}
        report(
            "unique_kills",
            enqueued=enqueued,
            conflicts=conflicts,
            kills=len(pool.killed),
            holders_after_kills=after_kills,
            holders_after_sweep=after_sweep,
            leases_swept=swept,
        )
    finally:
        pool.stop_all()
        client.close()
        await store.close()
