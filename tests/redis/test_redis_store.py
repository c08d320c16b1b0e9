"""What only the Redis adapter has to prove: atomicity under concurrency, key hygiene, outages."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import (
    EnqueueRequest,
    Job,
    JobQuery,
    JobService,
    JobStatus,
    Outcome,
    OutcomeKind,
    StoreUnavailable,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests._redis_server import free_port

pytestmark = pytest.mark.redis


def make_store(url: str, prefix: str) -> RedisJobStore:
    return RedisJobStore(RedisStoreSettings(url=url, key_prefix=prefix), clock=SystemClock())


def service_for(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


async def test_eight_concurrent_claimers_claim_every_job_exactly_once(
    redis_url: str, key_prefix: str
) -> None:
    producer = make_store(redis_url, key_prefix)
    service = service_for(producer)
    jobs: list[Job] = []
    for _ in range(4):
        jobs += await service.enqueue_many([EnqueueRequest(type="t", payload=b"x")] * 500)
    claimers = [make_store(redis_url, key_prefix) for _ in range(8)]
    claimed: Counter[str] = Counter()

    async def drain(store: RedisJobStore) -> None:
        for _ in range(10_000):  # bounded: 2,000 jobs need far fewer rounds
            leases = await store.claim(["t"], limit=7, lease_ms=60_000)
            if not leases:
                return
            claimed.update(lease.job.id for lease in leases)
            outcomes = [
                Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
                for lease in leases
            ]
            assert all(await store.settle(outcomes))

    await asyncio.gather(*(drain(store) for store in claimers))
    assert len(claimed) == 2_000
    assert set(claimed.values()) == {1}
    assert set(claimed) == {job.id for job in jobs}
    stats = await producer.stats()
    assert stats.total.completed == 2_000
    for store in [producer, *claimers]:
        await store.close()


async def test_every_key_stays_inside_the_prefix(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    store = make_store(redis_url, key_prefix)
    service = service_for(store)
    job = await service.enqueue("billing.invoice:v2", b"{}", idempotency_key="k-1")
    (lease,) = await store.claim(["billing.invoice:v2"], limit=1, lease_ms=1_000)
    await store.settle([Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.COMPLETE)])
    keys = [key.decode() async for key in raw.scan_iter(match=f"*{key_prefix}*")]
    assert keys
    assert all(key.startswith("{" + key_prefix + "}:") for key in keys)
    # The finished job and its key carry the retention TTL; nothing else leaks a TTL-less copy.
    assert await raw.pttl(f"{{{key_prefix}}}:j:{job.id}") > 0
    assert await raw.pttl(f"{{{key_prefix}}}:k:billing.invoice:v2/k-1") > 0
    await store.close()


async def test_prefixes_isolate_queues(redis_url: str, key_prefix: str) -> None:
    one, two = make_store(redis_url, key_prefix + "a"), make_store(redis_url, key_prefix + "b")
    job = await service_for(one).enqueue("t")
    assert await two.get(job.id) is None
    assert await two.claim(["t"], limit=5, lease_ms=1_000) == []
    assert (await two.list_jobs(JobQuery())).jobs == []
    assert len(await one.claim(["t"], limit=5, lease_ms=1_000)) == 1
    await one.close()
    await two.close()


def test_settings_refuse_a_prefix_that_could_escape() -> None:
    for bad in ("", "a}b", "{x", "has space", "x" * 65):
        with pytest.raises(ValueError, match="key_prefix"):
            RedisStoreSettings(key_prefix=bad)


async def test_unreachable_redis_is_store_unavailable() -> None:
    store = RedisJobStore(
        RedisStoreSettings(url=f"redis://127.0.0.1:{free_port()}/0", connect_timeout_ms=500)
    )
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await service_for(store).enqueue("t")
    with pytest.raises(StoreUnavailable):
        await store.claim(["t"], limit=1, lease_ms=1_000)
    await store.close()


async def test_scripts_come_back_after_a_script_flush(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    store = make_store(redis_url, key_prefix)
    service = service_for(store)
    await service.enqueue("t")
    await raw.script_flush()
    job = await service.enqueue("t")
    assert (await store.get(job.id)) == job
    await store.close()


async def test_blocked_claim_wakes_for_a_job_enqueued_elsewhere(
    redis_url: str, key_prefix: str
) -> None:
    worker_side, producer_side = (
        make_store(redis_url, key_prefix),
        make_store(redis_url, key_prefix),
    )
    waiting = asyncio.create_task(worker_side.claim(["t"], limit=5, lease_ms=1_000, wait_ms=10_000))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    loop = asyncio.get_running_loop()
    enqueued_at = loop.time()
    job = await service_for(producer_side).enqueue("t")
    (lease,) = await asyncio.wait_for(waiting, 5)
    assert lease.job.id == job.id
    assert loop.time() - enqueued_at < 1.0
    await worker_side.close()
    await producer_side.close()


async def test_blocked_claim_wakes_when_a_scheduled_job_falls_due(
    redis_url: str, key_prefix: str
) -> None:
    store = make_store(redis_url, key_prefix)
    clock = SystemClock()
    job = await service_for(store).enqueue("t", execution_time_ms=clock.now_ms() + 300)
    leases = await store.claim(["t"], limit=1, lease_ms=1_000, wait_ms=5_000)
    assert [lease.job.id for lease in leases] == [job.id]
    assert clock.now_ms() >= job.execution_time_ms
    assert leases[0].job.status is JobStatus.RUNNING
    await store.close()


async def test_concurrent_adds_share_script_calls_and_keep_their_own_jobs(
    redis_url: str, key_prefix: str
) -> None:
    store = make_store(redis_url, key_prefix)
    service = service_for(store)
    results = await asyncio.gather(
        *(service.enqueue("t", str(i).encode()) for i in range(200)),
        service.enqueue("t", b"keyed", idempotency_key="shared"),
        service.enqueue("t", b"keyed again", idempotency_key="shared"),
    )
    assert [job.payload for job in results[:200]] == [str(i).encode() for i in range(200)]
    assert len({job.id for job in results[:200]}) == 200
    assert results[200] == results[201]
    for job in results:
        assert await store.get(job.id) == job
    assert (await store.stats()).total.pending == 201
    await store.close()


async def test_a_cancelled_caller_does_not_abort_the_jobs_it_was_combined_with(
    redis_url: str, key_prefix: str
) -> None:
    store = make_store(redis_url, key_prefix)
    service = service_for(store)
    first = asyncio.create_task(service.enqueue("t", b"first"))
    others = [asyncio.create_task(service.enqueue("t", b"other")) for _ in range(20)]
    await asyncio.sleep(0)
    first.cancel()
    stored = await asyncio.gather(*others)
    for job in stored:
        assert await store.get(job.id) == job
    with pytest.raises(asyncio.CancelledError):
        await first
    await store.close()


@pytest.mark.parametrize("method", ["requeue_expired", "get", "claim", "ping"])
async def test_cancelling_a_store_call_always_cancels_the_caller(
    redis_url: str, key_prefix: str, method: str
) -> None:
    """Python 3.11's wait_for inside redis-py can drop a cancellation; the store gives it back."""
    store = make_store(redis_url, key_prefix)
    job = await service_for(store).enqueue("t", execution_time_ms=4_000_000_000_000)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "requeue_expired": lambda: store.requeue_expired(),
        "get": lambda: store.get(job.id),
        "claim": lambda: store.claim(["t"], limit=1, lease_ms=1_000),
        "ping": lambda: store.ping(),
    }

    async def keep_calling() -> None:
        for _ in range(1_000_000):  # bounded; cancelled long before
            try:
                await calls[method]()
            except StoreUnavailable:
                continue  # what a resilient caller does; it must not hide a cancel

    for trial in range(25):
        task = asyncio.create_task(keep_calling())
        await asyncio.sleep(0.0005 * (trial % 6))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 2)
    await store.close()
