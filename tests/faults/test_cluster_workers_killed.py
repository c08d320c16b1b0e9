"""Scenario 1 on a Redis Cluster: worker processes SIGKILLed under load, 3 masters, 8 shards.

The same ledger as test_workers_killed.py, with the store on 3 masters + 3
replicas: the server enqueues through the cluster client into 8 virtual
shards (``work`` and ``slow.healthy`` fall in shards 0 and 7), and the
ledger workers are started with the cluster URL and no shard setting (they
adopt the layout the server recorded, _layout.py). Every acknowledged job
must complete, no two runs of a job may overlap, and a job runs again only
when its worker died with it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests._redis_groups import ClusterProcesses, running_cluster
from tests.faults._ledger import check_ledger, read_ledger, summarize, wait_terminal
from tests.faults._processes import ServerProc, WorkerPool
from tests.faults._producers import ProducerLog, produce
from tests.faults._scenario import new_prefix, report, scale
from tests.faults._timeline import overlapping_runs

pytestmark = [pytest.mark.faults, pytest.mark.redis, pytest.mark.timeout(scale(150, 900))]

SHARDS = 8
WORKERS = 4
JOBS = scale(600, 5_000)
"""Per type (two types)."""
KILLS = scale(6, 100)
KILL_EVERY_S = 0.5
LEASE_MS = 3_000
"""Longer than scenario 1's: on this shared machine a cluster call can stall for a second, and a
lease lost to a stall (not a kill) would rerun a job no kill explains."""


@pytest.fixture
def cluster() -> Iterator[ClusterProcesses]:
    with running_cluster() as nodes:
        yield nodes


async def test_every_job_completes_when_workers_on_a_cluster_are_killed(
    cluster: ClusterProcesses, tmp_path: Path
) -> None:
    prefix = new_prefix()
    server = ServerProc(
        redis_url=cluster.url,
        prefix=prefix,
        log_dir=tmp_path,
        env={"JOBQUEUE_REDIS_SHARDS": str(SHARDS)},
    )
    server.start()
    pool = WorkerPool.on_redis(tmp_path, cluster.url, prefix, concurrency=4, lease_ms=LEASE_MS)
    (port, *_) = cluster.master_ports()
    client = redis.RedisCluster(host="127.0.0.1", port=port)
    rng = random.Random(7)
    try:
        pool.spawn_many(WORKERS)
        rate = JOBS / (KILLS * KILL_EVERY_S)
        producing = [
            asyncio.create_task(
                produce(
                    server.target, run=f"{prefix}-{t}", tasks=4, count=JOBS, rate=rate, job_type=t
                )
            )
            for t in ("work", "slow.healthy")
        ]
        started = time.monotonic()
        kills = await pool.kill_at_random(KILLS, every_s=KILL_EVERY_S, rng=rng)
        pool.wait_ready()
        logs: list[ProducerLog] = [await asyncio.wait_for(task, 120) for task in producing]
        acked = [job_id for log in logs for job_id in log.acked.values()]
        jobs = wait_terminal(client, prefix, acked, timeout_s=90, shards=SHARDS)
        drained_s = time.monotonic() - started
        exit_codes = pool.stop_all()
        runs = read_ledger(tmp_path)
        check = check_ledger(jobs, runs, killed_pids=pool.killed)
        overlaps = overlapping_runs(runs, pool.exited)
        report(
            "cluster-workers-killed",
            enqueued=len(acked),
            completed=check.completed,
            lost=len(check.lost),
            duplicated=check.duplicated,
            unexplained_reruns=len(check.unexplained_reruns),
            overlapping_runs=len(overlaps),
            kills=kills,
            producer_errors=sum(log.error_count for log in logs),
            statuses=summarize(jobs),
            drained_s=round(drained_s, 1),
            worker_exit_codes=sorted(Counter(exit_codes.values()).items(), key=str),
        )
        assert kills == KILLS
        assert all(not log.wrong for log in logs), [log.wrong[:3] for log in logs]
        assert len(acked) == 2 * JOBS
        assert not check.lost, (len(check.lost), summarize(jobs))
        assert not check.never_ran, check.never_ran[:5]
        assert not check.unexplained_reruns, [runs[j] for j in check.unexplained_reruns[:3]]
        assert not check.stale_results, [(jobs[j], runs[j]) for j in check.stale_results[:3]]
        assert not overlaps, overlaps[:3]
        assert set(exit_codes.values()) == {0}, (exit_codes, pool.log_of(0)[-3000:])
    finally:
        pool.stop_all()
        server.stop()
        client.close()
