"""A Redis Cluster under load losing a master, and resharding live (issue 12's Cluster faults).

Producers enqueue with idempotency keys (a retry after an unavailable reply is
safe) and keep a ledger of what was acknowledged; workers claim, complete and
sweep. A fault hits in the middle; afterwards every acknowledged job must be
found COMPLETED. The store runs with ``min_replicas=1``: an acknowledged write
is on a replica before the producer hears of it.

Long (about 80 s each here): set JOBQUEUE_FAULTS_LONG=1 to run them. Measured
(6 types, 32 shards, 2 producers, 2 workers): a master SIGKILLed and its replica
promoted, then the old master back as a replica: 7,661 acknowledged, 0 lost;
every slot of a master moved with ``redis-cli --cluster reshard`` under load:
11,154 acknowledged, 0 lost.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest
import redis
from redis.crc import key_slot

from jobqueue.domain import (
    JobService,
    JobStatus,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._shards import shard_of_type
from tests._redis_groups import ClusterProcesses, running_cluster

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        os.environ.get("JOBQUEUE_FAULTS_LONG") != "1", reason="set JOBQUEUE_FAULTS_LONG=1"
    ),
    pytest.mark.timeout(300),
    # redis-py's RedisCluster drops the node objects of a dead master or a moved slot
    # without closing their sockets: the warnings are its, not a leak of ours.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

TYPES = [f"type{i:02d}" for i in range(6)]
"""Six types, spread over the three masters by 32 virtual shards."""


@pytest.fixture
def cluster() -> Iterator[ClusterProcesses]:
    with running_cluster() as nodes:
        yield nodes


@dataclass
class Ledger:
    acknowledged: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)


def settings_for(cluster: ClusterProcesses, prefix: str) -> RedisStoreSettings:
    return RedisStoreSettings(
        url=cluster.url,
        key_prefix=prefix,
        shards=32,
        min_replicas=1,
        replica_timeout_ms=2_000,
        socket_timeout_ms=3_000,
    )


async def run_load(
    cluster: ClusterProcesses, disrupt: Callable[[], Awaitable[None]], prefix: str
) -> Ledger:
    settings = settings_for(cluster, prefix)
    ledger = Ledger()
    stop = asyncio.Event()
    stores = [RedisJobStore(settings) for _ in range(4)]

    async def produce(store: RedisJobStore, name: str) -> None:
        service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
        for i in range(100_000):  # bounded; stops when told
            if stop.is_set():
                return
            for _ in range(200):  # retry one job until acknowledged: its key makes it safe
                try:
                    job = await service.enqueue(
                        TYPES[i % len(TYPES)], b"p", idempotency_key=f"{name}-{i}"
                    )
                    ledger.acknowledged.add(job.id)
                    break
                except Exception as error:
                    ledger.errors[f"{type(error).__name__}: {str(error)[:70]}"] += 1
                    await asyncio.sleep(0.05)

    async def work(store: RedisJobStore, until_done: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        for _ in range(1_000_000):  # bounded; stops when the ledger is settled
            if until_done.is_set():
                return
            try:
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + 0.5
                    await store.requeue_expired(lock_ms=500)
                leases = await store.claim(TYPES, limit=50, lease_ms=3_000, wait_ms=200)
                outcomes = [
                    Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
                    for lease in leases
                ]
                applied = await store.settle(outcomes) if outcomes else []
                ledger.completed.update(
                    o.job_id for o, ok in zip(outcomes, applied, strict=True) if ok
                )
            except Exception as error:
                ledger.errors[f"{type(error).__name__}: {str(error)[:70]}"] += 1
                await asyncio.sleep(0.05)

    done = asyncio.Event()
    try:
        producers = [asyncio.create_task(produce(stores[i], f"p{i}")) for i in range(2)]
        workers = [asyncio.create_task(work(stores[i], done)) for i in range(2, 4)]
        await asyncio.sleep(3)
        await disrupt()
        await asyncio.sleep(4)
        stop.set()
        await asyncio.gather(*producers)
        for _ in range(600):  # up to 60 s for the workers to finish the ledger
            if ledger.acknowledged <= ledger.completed:
                break
            await asyncio.sleep(0.1)
        done.set()
        await asyncio.gather(*workers)
        # Completions whose reply was lost in the fault still count: ask each job.
        missing = ledger.acknowledged - ledger.completed
        for job_id in missing:
            job = await stores[0].get(job_id)
            if job is not None and job.status is JobStatus.COMPLETED:
                ledger.completed.add(job_id)
        return ledger
    finally:
        for store in stores:
            await store.close()


def master_of_most_slots(cluster: ClusterProcesses) -> tuple[int, str]:
    """(port, node id) of a master."""
    port = cluster.master_ports()[0]
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        node_id = client.cluster("MYID")
    finally:
        client.close()
    return port, node_id.decode() if isinstance(node_id, bytes) else str(node_id)


async def test_a_master_killed_under_load_loses_no_acknowledged_job(
    cluster: ClusterProcesses,
) -> None:
    async def kill_a_master() -> None:
        port, _ = master_of_most_slots(cluster)
        (victim,) = [node for node in cluster.nodes if node.port == port]
        victim.kill()
        await asyncio.to_thread(_wait_for_promotion, cluster, port)
        # Its shard's only replica is now its master: durable writes there wait for
        # a replica again, which the old master becomes when it comes back.
        await asyncio.to_thread(victim.start)
        await asyncio.to_thread(cluster.wait_until_ok)

    ledger = await run_load(cluster, kill_a_master, f"jqf-{uuid.uuid4().hex[:6]}")
    print("acknowledged", len(ledger.acknowledged), "errors", dict(ledger.errors))
    assert len(ledger.acknowledged) > 100
    assert ledger.acknowledged - ledger.completed == set()


async def test_a_live_reshard_under_load_loses_no_acknowledged_job(
    cluster: ClusterProcesses,
) -> None:
    prefix = f"jqf-{uuid.uuid4().hex[:6]}"
    # Every slot of the master that holds the first type's shard moves, under load.
    tag = "{" + f"{prefix}.{shard_of_type(TYPES[0], 32)}" + "}:tz"
    slot = key_slot(tag.encode())
    moved_from: list[int] = []
    """The shard's master before the reshard, then the one that takes its slots."""

    async def reshard() -> None:
        port = next(p for p in cluster.master_ports() if _keys_in_slot(p, slot))
        moved_from.append(port)
        source = _node_id(port)
        other = next(p for p in cluster.master_ports() if p != port)
        moved_from.append(other)
        client = redis.Redis(host="127.0.0.1", port=other)
        try:
            target = client.cluster("MYID")
        finally:
            client.close()
        target_id = target.decode() if isinstance(target, bytes) else str(target)
        done = await asyncio.to_thread(
            subprocess.run,
            [
                "redis-cli",
                "--cluster",
                "reshard",
                f"127.0.0.1:{port}",
                "--cluster-from",
                source,
                "--cluster-to",
                target_id,
                "--cluster-slots",
                str(_slots_of(port)),
                "--cluster-yes",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout[-2_000:] + done.stderr[-2_000:]

    ledger = await run_load(cluster, reshard, prefix)
    assert _keys_in_slot(moved_from[1], slot) > 0  # the shard's slot did move
    print("acknowledged", len(ledger.acknowledged), "errors", dict(ledger.errors))
    assert len(ledger.acknowledged) > 100
    assert ledger.acknowledged - ledger.completed == set()


def _wait_for_promotion(cluster: ClusterProcesses, dead_port: int) -> None:
    """Until the cluster has flagged the dead master and promoted its replica."""
    deadline = time.monotonic() + 30
    while True:
        masters = cluster.master_ports()
        if dead_port not in masters and len(masters) == cluster.masters:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("no replica was promoted")
        time.sleep(0.1)


def _keys_in_slot(port: int, slot: int) -> int:
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        return int(client.cluster("COUNTKEYSINSLOT", slot))
    finally:
        client.close()


def _node_id(port: int) -> str:
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        node_id = client.cluster("MYID")
    finally:
        client.close()
    return node_id.decode() if isinstance(node_id, bytes) else str(node_id)


def _slots_of(port: int) -> int:
    """How many slots the master on ``port`` serves."""
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        ranges = client.cluster("SLOTS")
    finally:
        client.close()
    return sum(int(row[1]) - int(row[0]) + 1 for row in ranges if int(row[2][1]) == port)
