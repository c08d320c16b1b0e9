"""Costs that follow work, not history, and retention that lives in one place (issue 11, 7-8).

Each test counts what Redis does (commands processed, index entries, TTLs)
rather than timing it: the timed figures with 100,000 types are in
tests/faults/test_many_types.py.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import (
    EnqueueRequest,
    JobQuery,
    JobService,
    JobStatus,
    JobStore,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.memory import MemoryJobStore
from jobqueue.redis import RedisJobStore, RedisStoreSettings

pytestmark = pytest.mark.redis

HOUR_MS = 3_600_000


def store_for(
    url: str, prefix: str, *, retention_ms: int | None = None, max_finished: int | None = None
) -> RedisJobStore:
    settings = RedisStoreSettings(
        url=url, key_prefix=prefix, retention_ms=retention_ms, max_finished=max_finished
    )
    return RedisJobStore(settings)


# One generator for the whole module: ids from one generator rise strictly within
# a millisecond, so jobs finished in the same millisecond (the finish index's
# score) still go oldest first; a fresh generator per job starts its counter at
# random and ordered such ties by chance (a CI failure).
IDS = UuidV7Generator()


def service_for(store: JobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=IDS)


async def complete_one(store: JobStore, job_type: str = "t") -> str:
    (job,) = await service_for(store).enqueue_many([EnqueueRequest(type=job_type)])
    (lease,) = await store.claim([job_type], limit=1, lease_ms=60_000)
    assert await store.settle(
        [Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.COMPLETE)]
    ) == [True]
    return job.id


async def commands_processed(raw: aioredis.Redis) -> int:
    info = await raw.info("stats")
    return int(info["total_commands_processed"])


async def test_retention_is_the_servers_whoever_finishes_the_job(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    """A server set to one hour and a worker left at its defaults keep jobs for one hour.

    Before, each finisher applied its own retention: TTLs of 1 h and 24 h side by side.
    """
    server = store_for(redis_url, key_prefix, retention_ms=HOUR_MS)
    worker = store_for(redis_url, key_prefix)
    try:
        await server.ping()
        await complete_one(server)  # the server's first script publishes its settings
        by_worker = await complete_one(worker)
        by_server = await complete_one(server)
        for job_id in (by_worker, by_server):
            ttl = await raw.pttl(f"{{{key_prefix}}}:j:{job_id}")
            assert HOUR_MS - 60_000 < ttl <= HOUR_MS, (job_id, ttl)
    finally:
        await server.close()
        await worker.close()


async def test_finished_jobs_beyond_the_count_cap_are_forgotten_oldest_first(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    store = store_for(redis_url, key_prefix, max_finished=3)
    try:
        ids = [await complete_one(store) for _ in range(5)]
        for job_id in ids[:2]:
            assert await store.get(job_id) is None
            assert not await raw.exists(f"{{{key_prefix}}}:j:{job_id}")
        for job_id in ids[2:]:
            job = await store.get(job_id)
            assert job is not None
            assert job.status is JobStatus.COMPLETED
        assert await raw.zcard(f"{{{key_prefix}}}:d:t:3") == 3
    finally:
        await store.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_stats_count_at_most_a_thousand_types_and_say_how_many_more(
    kind: str, request: pytest.FixtureRequest, key_prefix: str
) -> None:
    store: JobStore
    if kind == "memory":
        store = MemoryJobStore()
    else:
        store = store_for(request.getfixturevalue("redis_url"), key_prefix)
    try:
        requests = [EnqueueRequest(type=f"t{n:05d}") for n in range(1_200)]
        await service_for(store).enqueue_many(requests)
        stats = await store.stats()
        assert [row.type for row in stats.types] == [f"t{n:05d}" for n in range(1_000)]
        assert stats.omitted_types == 200
        assert stats.total.pending == 1_000
    finally:
        await store.close()


async def test_an_unfiltered_page_does_not_visit_every_type(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    """2,000 types whose pending jobs were all cancelled, one that has work.

    Before, a 10-job page without a type filter made a round trip per type and
    status (10,004 for 2,000 empty types); now it is one script call that
    visits the types left in the status's index, pruning the ones found empty.
    """
    store = store_for(redis_url, key_prefix)
    service = service_for(store)
    try:
        gone = await service.enqueue_many(
            [EnqueueRequest(type=f"empty{n:05d}") for n in range(2_000)]
        )
        await asyncio.gather(*(store.cancel(job.id) for job in gone))
        live = await service.enqueue_many([EnqueueRequest(type="zz-live")] * 10)
        await store.list_jobs(JobQuery(status=JobStatus.PENDING, limit=10))  # prunes
        before = await commands_processed(raw)
        page = await store.list_jobs(JobQuery(status=JobStatus.PENDING, limit=10))
        used = await commands_processed(raw) - before
        assert [job.id for job in page.jobs] == [job.id for job in live]
        # Commands inside the script count too: about 20 for this page, not thousands.
        assert used < 100, used
        assert await raw.zcard(f"{{{key_prefix}}}:ts:1") == 1
    finally:
        await store.close()


async def test_a_sweep_visits_only_types_whose_leases_may_have_expired(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    store = store_for(redis_url, key_prefix)
    service = service_for(store)
    types = [f"t{n:04d}" for n in range(500)]
    try:
        await service.enqueue_many([EnqueueRequest(type=t) for t in types])
        await store.claim(types, limit=1_000, lease_ms=60_000)
        short = (await service.enqueue_many([EnqueueRequest(type="short")]))[0]
        await store.claim(["short"], limit=1, lease_ms=1)
        await asyncio.sleep(0.01)
        index = f"{{{key_prefix}}}:lx"
        due = await raw.zrangebyscore(index, "-inf", "+inf", start=0, num=10)
        assert due[0] == b"short"  # the only bound that has passed, first
        assert await store.requeue_expired() == 1
        job = await store.get(short.id)
        assert job is not None
        assert job.status is JobStatus.PENDING
        # The type left the index (no lease left); the 500 others wait a minute.
        assert await raw.zscore(index, "short") is None
        assert await raw.zcard(index) == 500
    finally:
        await store.close()


async def test_one_sweep_per_interval_across_processes(redis_url: str, key_prefix: str) -> None:
    first = store_for(redis_url, key_prefix)
    second = store_for(redis_url, key_prefix)
    try:
        (job,) = await service_for(first).enqueue_many([EnqueueRequest(type="t")])
        await first.claim(["t"], limit=1, lease_ms=1)
        await asyncio.sleep(0.01)
        assert await first.requeue_expired(lock_ms=5_000) == 1
        await second.claim(["t"], limit=1, lease_ms=1)
        await asyncio.sleep(0.01)
        # The other process's sweep within the lock does nothing...
        assert await second.requeue_expired(lock_ms=5_000) == 0
        stored = await second.get(job.id)
        assert stored is not None
        assert stored.status is JobStatus.RUNNING
        # ...while a sweep that takes no lock still runs.
        assert await second.requeue_expired() == 1
    finally:
        await first.close()
        await second.close()
