"""The store on a Redis Cluster of 3 masters and 3 replicas, sharded by job type (issue 12).

What the contract suite cannot show: that each script stays in one slot (the
cluster refuses it otherwise), that ids route by themselves, that a batch
spanning shards is split and replayed shard by shard, and that 30 job types
spread the commands over the masters. Migration into shards is in
test_cluster_migrate.py; replicas, slot moves and MOVED in test_cluster_nodes.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis

from jobqueue.domain import (
    EnqueueRequest,
    JobQuery,
    JobStatus,
    LeaseState,
    Outcome,
    OutcomeKind,
)
from jobqueue.redis import RedisJobStore
from jobqueue.redis._shards import shard_of_id, shard_of_type
from tests._redis_groups import ClusterProcesses
from tests.redis._cluster import SHARDS, make_store, service_for

pytestmark = pytest.mark.redis


@pytest.fixture
async def store(cluster: ClusterProcesses) -> AsyncIterator[RedisJobStore]:
    adapter = make_store(cluster, f"jqc-{uuid.uuid4().hex[:8]}")
    yield adapter
    await adapter.close()


async def test_a_job_id_names_its_types_shard_and_routes_get_and_cancel(
    store: RedisJobStore,
) -> None:
    service = service_for(store)
    types = [f"type{i:02d}" for i in range(30)]
    jobs = [await service.enqueue(job_type, b"p") for job_type in types]
    for job in jobs:
        assert shard_of_id(job.id, SHARDS) == shard_of_type(job.type, SHARDS)
        uuid.UUID(job.id)  # still a UUID in its text form
        assert await store.get(job.id) == job
    cancelled = await store.cancel(jobs[0].id)
    assert cancelled.status is JobStatus.CANCELLED
    other_shard = (shard_of_type(jobs[0].type, SHARDS) + 1) % SHARDS
    assert await store.get(jobs[0].id[:-4] + f"{other_shard:04x}") is None


async def test_the_whole_life_of_jobs_over_many_shards(store: RedisJobStore) -> None:
    """Every script on a cluster: one that reached a key of another slot would fail here."""
    service = service_for(store)
    types = [f"life{i}" for i in range(8)]
    stored = await service.enqueue_many(
        [EnqueueRequest(type=t, payload=b"x") for t in types for _ in range(5)]
    )
    assert len({shard_of_type(t, SHARDS) for t in types}) > 1
    first = await store.claim(types, limit=8, lease_ms=30_000)
    assert sorted(lease.job.type for lease in first) == types  # an equal share per type
    leases = first + await store.claim(types, limit=100, lease_ms=30_000)
    assert sorted(lease.job.id for lease in leases) == sorted(job.id for job in stored)
    renewal = [(lease.job.id, lease.token) for lease in leases]
    assert await store.renew(renewal, lease_ms=30_000) == [LeaseState.ACTIVE] * len(leases)
    outcomes = [
        Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
        for lease in leases
    ]
    assert await store.settle(outcomes) == [True] * len(leases)
    stats = {row.type: row for row in (await store.stats()).types}
    assert {t: stats[t].completed for t in types} == dict.fromkeys(types, 5)
    seen: list[str] = []
    cursor = ""
    for _ in range(20):  # bounded: 40 jobs in pages of 7
        page = await store.list_jobs(JobQuery(status=JobStatus.COMPLETED, limit=7, cursor=cursor))
        seen += [job.id for job in page.jobs]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(job.id for job in stored)
    assert len(seen) == len(set(seen))
    assert await store.requeue_expired() == 0


async def test_a_claim_over_shards_waits_for_a_job_enqueued_on_any_of_them(
    store: RedisJobStore, cluster: ClusterProcesses
) -> None:
    types = ["wait-a", "wait-b", "wait-c", "wait-d"]
    assert len({shard_of_type(t, SHARDS) for t in types}) > 1
    claim = asyncio.create_task(store.claim(types, limit=1, lease_ms=30_000, wait_ms=20_000))
    await asyncio.sleep(0.3)
    assert not claim.done()
    (job,) = await service_for(store).enqueue_many([EnqueueRequest(type="wait-c")])
    (lease,) = await asyncio.wait_for(claim, 10)
    assert lease.job.id == job.id


async def test_a_batch_spanning_shards_is_stored_once_and_replayed(store: RedisJobStore) -> None:
    service = service_for(store)
    requests = [EnqueueRequest(type=f"batch{i}", payload=b"b") for i in range(10)]
    first = await service.enqueue_many(requests, idempotency_key="the-batch")
    again = await service.enqueue_many(requests, idempotency_key="the-batch")
    assert [job.id for job in again] == [job.id for job in first]
    assert [job.type for job in first] == [r.type for r in requests]
    pending = await store.list_jobs(JobQuery(status=JobStatus.PENDING, limit=100))
    assert sorted(job.id for job in pending.jobs) == sorted(job.id for job in first)


def test_a_script_reaching_another_slot_is_refused(cluster: ClusterProcesses) -> None:
    """The guarantee behind "each script is atomic in one slot": Redis enforces it."""
    (port, *_) = cluster.master_ports()
    client = redis.RedisCluster(host="127.0.0.1", port=port)
    try:
        script = "#!lua\nredis.call('SET', KEYS[1], 1)\nreturn redis.call('GET', ARGV[1])"
        # Two keys of one slot pass, a key of another slot is refused.
        assert client.eval(script, 1, "{jq.1}:a", "{jq.1}:b") is None
        with pytest.raises(redis.ResponseError, match=r"same slot|non local"):
            client.eval(script, 1, "{jq.1}:a", "{jq.2}:b")
    finally:
        client.close()


async def test_thirty_types_spread_the_commands_over_the_three_masters(
    cluster: ClusterProcesses,
) -> None:
    store = make_store(cluster, "jq")
    masters = [aioredis.Redis(host="127.0.0.1", port=port) for port in cluster.master_ports()]
    try:
        service = service_for(store)
        types = [f"type{i:02d}" for i in range(30)]
        for master in masters:
            await master.config_resetstat()
        for _ in range(4):
            await service.enqueue_many([EnqueueRequest(type=t) for t in types for _ in range(10)])
        done = 0
        for _ in range(1_000):  # bounded: 1,200 jobs in claims of 50
            leases = await store.claim(types, limit=50, lease_ms=30_000)
            if not leases:
                break
            outcomes = [
                Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
                for lease in leases
            ]
            done += sum(await store.settle(outcomes))
        assert done == 1_200
        calls = []
        for master in masters:
            stats = await master.info("commandstats")
            calls.append(
                sum(
                    int(row["calls"])
                    for name, row in stats.items()
                    if name.startswith("cmdstat_") and "cluster" not in name
                )
            )
        shares = [count / sum(calls) for count in calls]
        print("commands per master:", calls, "shares:", [round(s, 3) for s in shares])
        assert all(0.20 <= share <= 0.45 for share in shares), shares
    finally:
        await store.close()
        for master in masters:
            await master.aclose()
