"""Scenario 1: worker processes SIGKILLed at random under load.

4 ledger workers (Redis ``StoreSource``, 1 s leases) run jobs of ~10 ms that a
producer enqueues through the server, while a chaos loop SIGKILLs a random
worker every ~0.5 s and starts a replacement. Afterwards every acknowledged job
must be COMPLETED, and the ledger must show that a job ran more than once only
when a worker died with it, that no two runs of one job overlapped in time
(each run's start and end, or its worker's death, on the shared monotonic
clock), and that each stored result is the last run's.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests._redis_server import RedisProcess
from tests.faults._ledger import check_ledger, read_ledger, summarize, wait_terminal
from tests.faults._processes import ServerProc, WorkerPool
from tests.faults._producers import ProducerLog, produce
from tests.faults._scenario import report, scale
from tests.faults._timeline import overlapping_runs

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(120, 900))]

WORKERS = 4
JOBS = scale(1_000, 5_000)
KILLS = scale(6, 100)
KILL_EVERY_S = 0.5
LEASE_MS = 1_000


async def test_every_job_completes_when_workers_are_killed(
    redis_aof: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    server = ServerProc(redis_url=redis_aof.url, prefix=prefix, log_dir=tmp_path)
    server.start()
    pool = WorkerPool.on_redis(tmp_path, redis_aof.url, prefix, concurrency=4, lease_ms=LEASE_MS)
    client = redis.Redis.from_url(redis_aof.url)
    rng = random.Random(7)
    try:
        pool.spawn_many(WORKERS)
        # Production spans the kills, so every kill lands under load.
        rate = JOBS / (KILLS * KILL_EVERY_S)
        producing = asyncio.create_task(
            produce(server.target, run=prefix, tasks=8, count=JOBS, rate=rate)
        )
        started = time.monotonic()
        kills = await pool.kill_at_random(KILLS, every_s=KILL_EVERY_S, rng=rng)
        # A replacement still importing dies of SIGTERM before it can handle it.
        pool.wait_ready()
        log: ProducerLog = await asyncio.wait_for(producing, 120)
        chaos_s = time.monotonic() - started

        jobs = wait_terminal(client, prefix, list(log.acked.values()), timeout_s=60)
        drained_s = time.monotonic() - started
        exit_codes = pool.stop_all()
        runs = read_ledger(tmp_path)
        check = check_ledger(jobs, runs, killed_pids=pool.killed)
        overlaps = overlapping_runs(runs, pool.exited)

        recoveries = []
        for job_id in check.ran_twice:
            job_runs = runs[job_id]
            for before, after in itertools.pairwise(job_runs):
                killed_at = pool.killed.get(before.pid)
                if killed_at is not None:
                    recoveries.append((after.started_ns - killed_at) / 1e9)
        report(
            "workers-killed",
            enqueued=len(log.acked),
            completed=check.completed,
            lost=len(check.lost),
            duplicated=check.duplicated,
            unexplained_reruns=len(check.unexplained_reruns),
            stale_results=len(check.stale_results),
            overlapping_runs=len(overlaps),
            runs=sum(len(job_runs) for job_runs in runs.values()),
            kills=kills,
            producer_errors=log.error_count,
            statuses=summarize(jobs),
            max_redelivery_s=round(max(recoveries, default=0.0), 2),
            chaos_s=round(chaos_s, 1),
            drained_s=round(drained_s, 1),
            worker_exit_codes=sorted(Counter(exit_codes.values()).items(), key=str),
        )
        assert kills == KILLS
        assert not log.wrong, log.wrong[:5]
        assert len(log.acked) == JOBS
        assert not check.lost, (len(check.lost), summarize(jobs))
        assert not check.never_ran, check.never_ran[:5]
        assert not check.unexplained_reruns, [runs[j] for j in check.unexplained_reruns[:3]]
        assert not check.stale_results, [(jobs[j], runs[j]) for j in check.stale_results[:3]]
        assert not overlaps, overlaps[:3]
        # A lease outlives its dead worker by at most its length, plus a requeue sweep.
        assert max(recoveries, default=0.0) < LEASE_MS / 1000 + 2.0
        assert set(exit_codes.values()) == {0}, (exit_codes, pool.log_of(0)[-3000:])
    finally:
        pool.stop_all()
        server.stop()
        client.close()
