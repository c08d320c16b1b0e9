"""1,000 idle ClaimJobs calls or WatchJob streams on one server over Redis use a few connections."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest
import redis.asyncio as aioredis

from jobqueue.domain import EnqueueRequest, JobService, SystemClock, UuidV7Generator
from jobqueue.grpc import RunningServer
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2_grpc
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests._redis_clients import clients, evalsha_calls, peak_clients, subscribers, until
from tests.grpc.conftest import start_api

pytestmark = pytest.mark.redis

CALLS = 1_000


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.ping()
    yield client
    await client.aclose()


async def test_a_thousand_idle_claim_calls_share_a_few_redis_connections(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    settings = RedisStoreSettings(url=redis_url, key_prefix=key_prefix)
    store = RedisJobStore(settings, clock=SystemClock())
    producer = RedisJobStore(settings, clock=SystemClock())
    server: RunningServer = await start_api(store)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    workers = worker_pb2_grpc.WorkerServiceStub(channel)
    await producer.ping()
    scripts_before = await evalsha_calls(raw)
    baseline, _ = await clients(raw)
    request = wpb.ClaimJobsRequest(types=["idle"], max_jobs=1, lease_ms=60_000, wait_ms=2_000)
    calls = [asyncio.ensure_future(workers.ClaimJobs(request, timeout=30)) for _ in range(CALLS)]

    async def all_waiting() -> bool:
        if any(call.done() for call in calls):
            return True  # something ended early: the assertions below say what
        return await evalsha_calls(raw) >= scripts_before + CALLS and (await clients(raw))[1] > 0

    try:
        assert await until(all_waiting, within_s=20.0)
        job = await JobService(producer, clock=SystemClock(), ids=UuidV7Generator()).enqueue("idle")
        peak, _ = await peak_clients(raw, calls, baseline)
        results = await asyncio.gather(*calls, return_exceptions=True)
        failed = Counter(f"{r!r}"[:200] for r in results if isinstance(r, BaseException))
        assert not failed
        leases = [
            lease for r in results if isinstance(r, wpb.ClaimJobsResponse) for lease in r.leases
        ]
        assert [lease.job.id for lease in leases] == [job.id]
        assert peak <= 10
    finally:
        for call in calls:
            call.cancel()
        await channel.close(None)
        await server.stop(None)
        await store.close()
        await producer.close()


async def test_a_thousand_watch_streams_share_one_subscriber(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    settings = RedisStoreSettings(url=redis_url, key_prefix=key_prefix)
    store = RedisJobStore(settings, clock=SystemClock())
    producer = RedisJobStore(settings, clock=SystemClock())
    service = JobService(producer, clock=SystemClock(), ids=UuidV7Generator())
    jobs = []
    for _ in range(CALLS // 500):
        jobs += await service.enqueue_many([EnqueueRequest(type="watched")] * 500)
    server: RunningServer = await start_api(store)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    api = jobqueue_pb2_grpc.JobServiceStub(channel)
    baseline, _ = await clients(raw)
    seen: dict[str, list[int]] = {job.id: [] for job in jobs}

    async def follow(job_id: str) -> None:
        async for update in api.WatchJob(pb.WatchJobRequest(id=job_id), timeout=60):
            seen[job_id].append(update.job.status)

    watches = [asyncio.create_task(follow(job.id)) for job in jobs]

    async def all_started() -> bool:
        return any(watch.done() for watch in watches) or all(seen.values())

    try:
        assert await until(all_started, within_s=30.0)
        failed = Counter(f"{w.exception()!r}"[:200] for w in watches if w.done())
        assert not failed
        connected, _ = await clients(raw)
        assert connected - baseline <= 10
        assert len(await subscribers(raw)) == 1
        await asyncio.gather(*(producer.cancel(job.id) for job in jobs))
        await asyncio.wait_for(asyncio.gather(*watches), 60)
        finished = [pb.JOB_STATUS_PENDING, pb.JOB_STATUS_CANCELLED]
        assert all(statuses == finished for statuses in seen.values())
    finally:
        for watch in watches:
            watch.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
        await channel.close(None)
        await server.stop(None)
        await store.close()
        await producer.close()
