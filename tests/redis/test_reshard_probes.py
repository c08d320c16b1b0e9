"""A step meeting a slot in migration fails before its first write, priority queues too.

During a reshard a script's command fails when its key already left the node,
and a script is not rolled back: each step must read (probe) every key it will
write first. These cases probe keys the older probes missed: a retried job's
priority queue (settle), which it would otherwise leave in no index.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from redis.crc import key_slot

from jobqueue.domain import EnqueueRequest, JobStatus, Outcome, OutcomeKind, StoreUnavailable
from jobqueue.redis._shards import shard_of_type
from tests._redis_groups import ClusterProcesses
from tests.redis._cluster import SHARDS, make_store, service_for

pytestmark = pytest.mark.redis

LEASE = 30_000


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def test_a_retry_whose_priority_queue_moved_leaves_the_job_leased(
    cluster: ClusterProcesses,
) -> None:
    prefix = f"jqp-{uuid.uuid4().hex[:8]}"
    store = make_store(cluster, prefix)
    service = service_for(store)
    ns = "{" + f"{prefix}.{shard_of_type('pmove', SHARDS)}" + "}:"
    slot = key_slot((ns + "tz").encode())
    # Every plain key the settle probed before exists: q:, w:, d:<type>:3/4/5.
    plain = await service.enqueue_many([EnqueueRequest(type="pmove")] * 4)
    done, failed = await store.claim(["pmove"], limit=2, lease_ms=LEASE)
    await store.settle(
        [
            Outcome(job_id=done.job.id, token=done.token, kind=OutcomeKind.COMPLETE),
            Outcome(job_id=failed.job.id, token=failed.token, kind=OutcomeKind.FAIL),
        ]
    )
    await store.cancel(plain[2].id)
    urgent = await service.enqueue_many([EnqueueRequest(type="pmove", priority=5)] * 2)
    (lease,) = await store.claim(["pmove"], limit=1, lease_ms=LEASE)
    assert lease.job.id == urgent[0].id
    nodes = {port: redis.Redis(host="127.0.0.1", port=port) for port in cluster.master_ports()}
    owner = next(p for p, c in nodes.items() if c.cluster("COUNTKEYSINSLOT", slot))
    # The shared settings exist too (the default retention, written out), so every key
    # the script declares is here: Redis runs it rather than refusing it up front.
    nodes[owner].hset(ns + "cfg", "retention_ms", 86_400_000)
    target = next(p for p in nodes if p != owner)
    ids = {p: _text(c.cluster("MYID")) for p, c in nodes.items()}
    try:
        nodes[target].cluster("SETSLOT", slot, "IMPORTING", ids[owner])
        nodes[owner].cluster("SETSLOT", slot, "MIGRATING", ids[target])
        nodes[owner].migrate("127.0.0.1", target, [ns + "qp:5:pmove"], 0, 5_000)
        retry = Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.RETRY)
        with pytest.raises(StoreUnavailable, match="moving this shard's slot"):
            await store.settle([retry])
        # Nothing changed: still leased, still in the running index.
        assert nodes[owner].zscore(ns + "r:pmove", lease.job.id) is not None
        assert nodes[owner].hget(ns + "j:" + lease.job.id, "s") == b"2"
        # The move finishes: the same retry applies, and the job is back at its priority.
        nodes[owner].migrate("127.0.0.1", target, _keys_in(nodes[owner], slot), 0, 5_000)
        for port in (target, owner, *(p for p in nodes if p not in (owner, target))):
            nodes[port].cluster("SETSLOT", slot, "NODE", ids[target])
        owner, target = target, owner
        applied: list[bool] = []
        for _ in range(400):  # bounded (20 s): the nodes learn the new owner within a few rounds
            try:
                applied = await store.settle([retry])
                break
            except StoreUnavailable:
                await asyncio.sleep(0.05)
        assert applied == [True]
        job = await store.get(lease.job.id)
        assert job is not None
        assert job.status is JobStatus.PENDING
        leases = await store.claim(["pmove"], limit=1, lease_ms=LEASE)
        assert [claimed.job.priority for claimed in leases] == [5]
    finally:
        for port in nodes:
            nodes[port].cluster("SETSLOT", slot, "NODE", ids[owner])
        for client in nodes.values():
            client.close()
        await store.close()


def _keys_in(client: redis.Redis, slot: int) -> list[str]:
    return [_text(key) for key in client.cluster("GETKEYSINSLOT", slot, 1_000)]
