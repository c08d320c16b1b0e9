"""The store against what a cluster's nodes do: replicas that must acknowledge, a slot
moving between masters mid-claim, and a MOVED reply to a store not told it is a cluster."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import uuid

import pytest
import redis
from redis.crc import key_slot

from jobqueue.domain import EnqueueRequest, StoreUnavailable
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._shards import shard_of_type
from tests._redis_groups import ClusterProcesses
from tests.redis._cluster import SHARDS, make_store, service_for

pytestmark = pytest.mark.redis


async def test_a_durable_enqueue_is_on_a_replica_when_acknowledged(
    cluster: ClusterProcesses,
) -> None:
    """min_replicas on a cluster: the write and its WAIT go to the job's own master."""
    prefix = f"jqd-{uuid.uuid4().hex[:8]}"
    settings = RedisStoreSettings(url=cluster.url, key_prefix=prefix, shards=SHARDS, min_replicas=1)
    store = RedisJobStore(settings)
    try:
        jobs = await service_for(store).enqueue_many(
            [EnqueueRequest(type=f"durable{i}") for i in range(6)]
        )
        master_ports = set(cluster.master_ports())
        for job in jobs:
            key = "{" + f"{prefix}.{shard_of_type(job.type, SHARDS)}" + "}:j:" + job.id
            holders = []
            for node in cluster.nodes:
                replica = redis.Redis(host="127.0.0.1", port=node.port)
                try:
                    if node.port not in master_ports:
                        replica.readonly()
                        holders.append(bool(replica.exists(key)))
                except redis.exceptions.MovedError:
                    pass  # a replica of another master
                finally:
                    replica.close()
            assert any(holders), job.id  # its master's replica holds it already
        # With the replicas frozen, a durable enqueue is not acknowledged.
        replicas = [n.process for n in cluster.nodes if n.port not in master_ports and n.process]
        for process in replicas:
            process.send_signal(signal.SIGSTOP)
        try:
            quick = RedisJobStore(dataclasses.replace(settings, replica_timeout_ms=300))
            with pytest.raises(StoreUnavailable, match="replicas acknowledged"):
                await service_for(quick).enqueue("durable0")
            await quick.close()
        finally:
            for process in replicas:
                process.send_signal(signal.SIGCONT)
    finally:
        await store.close()


async def test_a_claim_meeting_a_slot_in_migration_changes_nothing(
    cluster: ClusterProcesses,
) -> None:
    """A script is not rolled back when a command in it fails: during a reshard, a claim
    whose job hash already left for the new master must fail before it takes any job
    out of the queue (``probe`` in _common.lua), or that job would be lost."""
    prefix = f"jqx-{uuid.uuid4().hex[:8]}"
    store = make_store(cluster, prefix)
    ns = "{" + f"{prefix}.{shard_of_type('moving', SHARDS)}" + "}:"
    slot = key_slot((ns + "tz").encode())
    jobs = await service_for(store).enqueue_many([EnqueueRequest(type="moving")] * 4)
    # One claim first: the keys the claim script declares (lx, ts:2) exist, so it runs.
    (first,) = await store.claim(["moving"], limit=1, lease_ms=30_000)
    waiting = [job for job in jobs if job.id != first.job.id]
    nodes = {port: redis.Redis(host="127.0.0.1", port=port) for port in cluster.master_ports()}
    owner = next(p for p, c in nodes.items() if c.cluster("COUNTKEYSINSLOT", slot))
    target = next(p for p in nodes if p != owner)
    ids = {p: _text(c.cluster("MYID")) for p, c in nodes.items()}
    try:
        nodes[target].cluster("SETSLOT", slot, "IMPORTING", ids[owner])
        nodes[owner].cluster("SETSLOT", slot, "MIGRATING", ids[target])
        moved_key = ns + "j:" + waiting[1].id
        nodes[owner].migrate("127.0.0.1", target, [moved_key], 0, 5_000)
        # Each reshard reply reaches the caller as UNAVAILABLE, which the SDKs retry:
        # "non local key" from inside the claim script, ASK then TRYAGAIN until
        # redis-py gives up ("TTL exhausted") for a cancel and an enqueue.
        with pytest.raises(StoreUnavailable, match="moving this shard's slot"):
            await store.claim(["moving"], limit=10, lease_ms=30_000)
        with pytest.raises(StoreUnavailable):
            await store.cancel(waiting[1].id)
        with pytest.raises(StoreUnavailable):
            await service_for(store).enqueue("moving")
        assert nodes[owner].zcard(ns + "q:moving") == 3  # nothing taken out, nothing added
        # The slot's move finished: every call works again, and nothing was lost.
        nodes[owner].migrate("127.0.0.1", target, _keys_in(nodes[owner], slot), 0, 5_000)
        for port in (target, owner, *(p for p in nodes if p not in (owner, target))):
            nodes[port].cluster("SETSLOT", slot, "NODE", ids[target])
        owner, target = target, owner
        leases = []
        for _ in range(400):  # bounded (20 s): the nodes learn the new owner within a few rounds
            try:
                leases = await store.claim(["moving"], limit=10, lease_ms=30_000)
                break
            except StoreUnavailable:
                await asyncio.sleep(0.05)
        assert sorted(lease.job.id for lease in leases) == sorted(job.id for job in waiting)
    finally:
        for port in nodes:
            nodes[port].cluster("SETSLOT", slot, "NODE", ids[owner])
        for client in nodes.values():
            client.close()
        await store.close()


def _keys_in(client: redis.Redis, slot: int) -> list[str]:
    return [_text(key) for key in client.cluster("GETKEYSINSLOT", slot, 1_000)]


async def test_a_moved_reply_left_over_is_unavailable(cluster: ClusterProcesses) -> None:
    """A store that was not told it talks to a cluster meets MOVED: typed, retryable."""
    first = cluster.master_ports()[0]
    elsewhere = set(range(16384)) - _slots_of(first)
    prefix = next(f"jqm{i}" for i in range(1_000) if key_slot(f"{{jqm{i}}}".encode()) in elsewhere)
    plain = RedisJobStore(RedisStoreSettings(url=f"redis://127.0.0.1:{first}/0", key_prefix=prefix))
    try:
        with pytest.raises(StoreUnavailable, match="MOVED"):
            await plain.get("0190a4d2-0000-7000-8000-000000000000")
    finally:
        await plain.close()


def _slots_of(port: int) -> set[int]:
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        mine = set()
        for start, end, master, *_ in client.cluster("SLOTS"):
            if int(master[1]) == port:
                mine |= set(range(int(start), int(end) + 1))
        return mine
    finally:
        client.close()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
