"""The store on a Redis Cluster of 3 masters and 3 replicas, sharded by job type (issue 12).

What the contract suite cannot show: that each script stays in one slot (the
cluster refuses it otherwise), that ids route by themselves, that a batch
spanning shards is split and replayed shard by shard, and that 30 job types
spread the commands over the masters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from importlib import resources

import pytest
import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from jobqueue.domain import (
    EnqueueRequest,
    JobQuery,
    JobService,
    JobStatus,
    LeaseState,
    Outcome,
    OutcomeKind,
    StoreUnavailable,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import MigrationReport, RedisJobStore, RedisStoreSettings, migrate_to_shards
from jobqueue.redis._shards import shard_of_id, shard_of_type
from tests._redis_server import ClusterProcesses

pytestmark = pytest.mark.redis

LUA = resources.files("jobqueue.redis").joinpath("lua")
SHARDS = 32
"""Enough virtual shards that 30 types spread over 3 masters (see docs/operations.md)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterProcesses]:
    if os.environ.get("JOBQUEUE_SKIP_REDIS_TESTS") == "1":
        pytest.skip("JOBQUEUE_SKIP_REDIS_TESTS=1")
    nodes = ClusterProcesses()
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.close()


@pytest.fixture
async def store(cluster: ClusterProcesses) -> AsyncIterator[RedisJobStore]:
    adapter = make_store(cluster, f"jqc-{uuid.uuid4().hex[:8]}")
    yield adapter
    await adapter.close()


def make_store(cluster: ClusterProcesses, prefix: str, shards: int = SHARDS) -> RedisJobStore:
    settings = RedisStoreSettings(url=cluster.url, key_prefix=prefix, shards=shards)
    return RedisJobStore(settings, clock=SystemClock())


def service_for(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


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


async def test_migrate_moves_pending_jobs_into_shards_and_old_ids_still_answer(
    cluster: ClusterProcesses,
) -> None:
    """Issue 12, item 5: a queue stored before sharding is not stranded."""
    prefix = f"jqm-{uuid.uuid4().hex[:8]}"
    old = make_store(cluster, prefix, shards=1)
    new = make_store(cluster, prefix, shards=8)
    try:
        service = service_for(old)
        types = [f"mig{i}" for i in range(6)]
        pending = await service.enqueue_many(
            [EnqueueRequest(type=t, payload=t.encode()) for t in types for _ in range(5)]
        )
        keyed = await service.enqueue("mig0", b"k", idempotency_key="once")
        later = await service.enqueue(
            "mig1", b"s", execution_time_ms=SystemClock().now_ms() + 600_000
        )
        leases = await old.claim(["mig2"], limit=3, lease_ms=60_000)
        done, retried, running = leases
        await old.settle(
            [
                Outcome(job_id=done.job.id, token=done.token, kind=OutcomeKind.COMPLETE),
                Outcome(
                    job_id=retried.job.id,
                    token=retried.token,
                    kind=OutcomeKind.RETRY,
                    error="boom",
                    retry_delay_ms=0,
                ),
            ]
        )
        # A batch taken by a migration that then stopped, as after a crash:
        await migrate_take_only(cluster, prefix)

        report = await migrate_to_shards(
            RedisStoreSettings(url=cluster.url, key_prefix=prefix, shards=8)
        )
        assert report == MigrationReport(moved=len(pending) - 3 + 1 + 1 + 1, running_left=1)
        assert await migrate_to_shards(
            RedisStoreSettings(url=cluster.url, key_prefix=prefix, shards=8)
        ) == MigrationReport(moved=0, running_left=1)

        leased = {lease.job.id for lease in leases}
        waiting = [job for job in [*pending, keyed, later] if job.id not in leased]
        moved = {job.id: await new.get(job.id) for job in waiting}
        assert all(job is not None and job.status is JobStatus.PENDING for job in moved.values())
        for job in waiting:
            now_job = moved[job.id]
            assert now_job is not None
            assert (now_job.type, now_job.payload) == (job.type, job.payload)
            assert now_job.id[:-4] == job.id[:-4]  # only the shard digits changed
        again = await new.get(retried.job.id)
        assert again is not None
        assert (again.attempts, again.last_error) == (1, "boom")
        assert (await new.get(later.id)).execution_time_ms == later.execution_time_ms  # type: ignore[union-attr]
        assert (await new.get(done.job.id)).status is JobStatus.COMPLETED  # type: ignore[union-attr]
        assert (await new.get(running.job.id)).status is JobStatus.RUNNING  # type: ignore[union-attr]

        # Every due job once, from the shards; the running one settles in the old layout.
        claimed = []
        for _ in range(50):  # bounded: 33 jobs in claims of 10
            got = await new.claim(types, limit=10, lease_ms=60_000)
            if not got:
                break
            claimed += [lease.job.type for lease in got]
        assert (
            len(claimed) == len(pending) - 3 + 1 + 1
        )  # the retried and keyed jobs; later is not due
        complete = Outcome(job_id=running.job.id, token=running.token, kind=OutcomeKind.COMPLETE)
        assert await old.settle([complete]) == [True]
        # The idempotency key moved with its job.
        assert (
            await service_for(new).enqueue("mig0", b"k", idempotency_key="once")
        ).payload == b"k"
        assert (await new.stats()).types
        assert (await new.cancel(later.id)).status is JobStatus.CANCELLED
    finally:
        await old.close()
        await new.close()


async def migrate_take_only(cluster: ClusterProcesses, prefix: str) -> None:
    ns = "{" + prefix + "}:"
    client = aioredis.RedisCluster.from_url("redis://" + cluster.url.split("://")[1].split(",")[0])
    try:
        script = "#!lua\n" + (LUA / "migrate_take.lua").read_text()
        await client.eval(script, 2, ns + "tz", ns + "migrating", ns, 4)
    finally:
        await client.aclose()


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
