"""Moving a queue stored before sharding into the shards of a Redis Cluster (issue 12, item 5)."""

from __future__ import annotations

import uuid
from importlib import resources

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import EnqueueRequest, JobStatus, Outcome, OutcomeKind, SystemClock
from jobqueue.redis import MigrationReport, RedisStoreSettings, migrate_to_shards
from tests._redis_groups import ClusterProcesses
from tests.redis._cluster import make_store, service_for

pytestmark = pytest.mark.redis

LUA = resources.files("jobqueue.redis").joinpath("lua")


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
