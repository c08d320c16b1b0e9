"""Watch and cancel events on a Redis Cluster ride sharded pub/sub, on each job's own master."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis

from jobqueue.domain import EnqueueRequest, Job, JobService, SystemClock, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._shards import shard_of_type
from tests._redis_groups import ClusterProcesses

pytestmark = pytest.mark.redis

SHARDS = 16


@pytest.fixture
async def store(cluster: ClusterProcesses) -> AsyncIterator[RedisJobStore]:
    prefix = f"jqp-{uuid.uuid4().hex[:8]}"
    adapter = RedisJobStore(RedisStoreSettings(url=cluster.url, key_prefix=prefix, shards=SHARDS))
    yield adapter
    await adapter.close()


def masters(cluster: ClusterProcesses) -> dict[int, redis.Redis]:
    return {port: redis.Redis(host="127.0.0.1", port=port) for port in cluster.master_ports()}


def owner_of(clients: dict[int, redis.Redis], channel: str) -> int:
    slot = next(iter(clients.values())).cluster("KEYSLOT", channel)
    for port, client in clients.items():
        if _owns(client, port, int(slot)):
            return port
    raise AssertionError(f"no master owns {channel}")


def _owns(client: redis.Redis, port: int, slot: int) -> bool:
    return any(
        int(start) <= slot <= int(end) and int(master[1]) == port
        for start, end, master, *_ in client.cluster("SLOTS")
    )


def spublish_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_spublish", {}).get("calls", 0))


async def test_watches_of_jobs_in_several_shards_hear_their_own_masters(
    store: RedisJobStore, cluster: ClusterProcesses
) -> None:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    types = [f"watch{i}" for i in range(6)]
    jobs = await service.enqueue_many([EnqueueRequest(type=t) for t in types])
    clients = masters(cluster)
    try:
        owners = {
            job.id: owner_of(clients, store._core.namespaces[shard_of_type(job.type, SHARDS)] + "x")
            for job in jobs
        }
        assert len(set(owners.values())) > 1  # the jobs live on more than one master
        before = {port: spublish_calls(client) for port, client in clients.items()}
        seen: dict[str, list[Job]] = {job.id: [] for job in jobs}

        async def follow(job: Job) -> None:
            async for state in store.watch(job.id):
                seen[job.id].append(state)
                if len(seen[job.id]) == 2:
                    return

        watches = [asyncio.create_task(follow(job)) for job in jobs]
        for _ in range(200):  # bounded: until every watch has subscribed and read its job
            if all(seen[job.id] for job in jobs):
                break
            await asyncio.sleep(0.01)
        # Each watch's channel is a shard channel, subscribed on the job's own master.
        for job in jobs:
            channel = store._core.namespaces[shard_of_type(job.type, SHARDS)] + "ev:" + job.id
            owner = clients[owners[job.id]]
            assert owner.pubsub_shardnumsub(channel) == [(channel.encode(), 1)]
            assert owner.pubsub_numsub(channel) == [(channel.encode(), 0)]
        leases = await store.claim(types, limit=10, lease_ms=30_000)
        assert len(leases) == len(jobs)
        await asyncio.wait_for(asyncio.gather(*watches), 10)
        assert all(states[-1].attempts == 1 for states in seen.values())
        # Every claim's event went out with SPUBLISH on the master that holds the job.
        after = {port: spublish_calls(client) for port, client in clients.items()}
        for port in clients:
            expected = sum(1 for owner in owners.values() if owner == port)
            assert after[port] - before[port] == expected, (port, before, after)
    finally:
        for client in clients.values():
            client.close()


async def test_cancel_requests_of_running_jobs_in_several_shards_reach_the_worker(
    store: RedisJobStore, cluster: ClusterProcesses
) -> None:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    types = [f"stop{i}" for i in range(6)]
    assert len({shard_of_type(t, SHARDS) for t in types}) > 2
    await service.enqueue_many([EnqueueRequest(type=t) for t in types])
    leases = await store.claim(types, limit=10, lease_ms=30_000)
    heard: list[str] = []

    async def listen() -> None:
        async for job_id in store.cancellations():
            heard.append(job_id)
            if len(heard) == len(leases):
                return

    listener = asyncio.create_task(listen())
    clients = masters(cluster)
    try:
        # One shard channel per shard, each subscribed on its own master.
        channels = [ns + "cancels" for ns in store._core.namespaces]
        for _ in range(500):  # bounded: cancellations() subscribes in the background
            counts = [
                n for client in clients.values() for _, n in client.pubsub_shardnumsub(*channels)
            ]
            if sum(counts) == len(channels):
                break
            await asyncio.sleep(0.01)
        assert sum(counts) == len(channels)
    finally:
        for client in clients.values():
            client.close()
    for lease in leases:
        await store.cancel(lease.job.id)
    await asyncio.wait_for(listener, 10)
    assert sorted(heard) == sorted(lease.job.id for lease in leases)


async def test_a_watch_follows_its_channel_when_the_slot_moves_to_another_master(
    store: RedisJobStore, cluster: ClusterProcesses
) -> None:
    """Redis ends shard subscriptions of a slot that moved: the watch resubscribes on
    the new owner, and still sees its job change."""
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    job = await service.enqueue("moving-watch")
    ns = store._core.namespaces[shard_of_type(job.type, SHARDS)]
    channel = ns + "ev:" + job.id
    clients = masters(cluster)
    try:
        owner = owner_of(clients, channel)
        target = next(port for port in clients if port != owner)
        states: list[Job] = []

        async def follow() -> None:
            async for state in store.watch(job.id):
                states.append(state)
                if state.status.is_terminal:
                    return

        watch = asyncio.create_task(follow())
        await _until(lambda: clients[owner].pubsub_shardnumsub(channel)[0][1] == 1)
        _move_slot(clients, int(clients[owner].cluster("KEYSLOT", channel)), owner, target)
        await _until(lambda: clients[target].pubsub_shardnumsub(channel)[0][1] == 1)
        for _ in range(100):  # bounded: the store's slot map catches up on its first MOVED
            try:
                await store.cancel(job.id)
                break
            except Exception:
                await asyncio.sleep(0.05)
        await asyncio.wait_for(watch, 10)
        assert states[-1].status.name == "CANCELLED"
    finally:
        for client in clients.values():
            client.close()


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1_000):  # bounded: 10 s
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def _move_slot(clients: dict[int, redis.Redis], slot: int, owner: int, target: int) -> None:
    ids = {port: _text(client.cluster("MYID")) for port, client in clients.items()}
    clients[target].cluster("SETSLOT", slot, "IMPORTING", ids[owner])
    clients[owner].cluster("SETSLOT", slot, "MIGRATING", ids[target])
    keys = [_text(key) for key in clients[owner].cluster("GETKEYSINSLOT", slot, 1_000)]
    if keys:
        clients[owner].migrate("127.0.0.1", target, keys, 0, 5_000)
    for port in (target, owner, *(p for p in clients if p not in (owner, target))):
        clients[port].cluster("SETSLOT", slot, "NODE", ids[target])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
