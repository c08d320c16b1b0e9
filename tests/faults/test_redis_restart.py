"""Scenario 2: Redis (AOF, ``appendfsync always``) SIGKILLed mid-load and restarted.

Producers enqueue through the server (each job with an idempotency key, retried
on UNAVAILABLE), two ledger workers drain over the Redis ``StoreSource``, and
Redis is killed and started again from its files, on the same port, while they
run. Every enqueue that returned OK must still be there and complete; clients
must see UNAVAILABLE — never a hang, never a wrong answer — during the outage;
the server and the workers must reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis

from tests._redis_server import RedisProcess
from tests.faults._ledger import check_ledger, read_ledger, stored_job_ids, summarize, wait_terminal
from tests.faults._processes import ServerProc, WorkerPool, health, wait_serving
from tests.faults._producers import produce
from tests.faults._scenario import report, scale

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(120, 600))]

OUTAGES = scale(1, 5)
OUTAGE_S = 2.0
LOAD_BEFORE_S = 1.5
LOAD_AFTER_S = 2.5
CALL_TIMEOUT_S = 5.0
LEASE_MS = 2_000


async def test_acknowledged_jobs_survive_a_redis_crash(
    redis_aof: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    server = ServerProc(redis_url=redis_aof.url, prefix=prefix, log_dir=tmp_path)
    server.start()
    pool = WorkerPool.on_redis(tmp_path, redis_aof.url, prefix, concurrency=8, lease_ms=LEASE_MS)
    client = redis.Redis.from_url(redis_aof.url)
    server_recovery: list[float] = []
    worker_recovery: list[float] = []
    try:
        pool.spawn_many(2)
        duration = OUTAGES * (LOAD_BEFORE_S + OUTAGE_S + LOAD_AFTER_S)
        producing = asyncio.create_task(
            produce(
                server.target,
                run=prefix,
                tasks=8,
                duration_s=duration,
                rate=200,
                call_timeout_s=CALL_TIMEOUT_S,
            )
        )
        restarts: list[tuple[float, int]] = []
        for _ in range(OUTAGES):
            await asyncio.sleep(LOAD_BEFORE_S)
            redis_aof.kill()
            await asyncio.sleep(OUTAGE_S)
            await asyncio.to_thread(redis_aof.start)
            restarted, restarted_ns = time.monotonic(), time.monotonic_ns()
            restarts.append((restarted, restarted_ns))
            await asyncio.to_thread(wait_serving, server.port, 15)
            await asyncio.sleep(LOAD_AFTER_S)
        log = await asyncio.wait_for(producing, 120)
        assert health(server.port) is not None

        # The first acknowledged enqueue and the first handler run after each restart.
        runs = read_ledger(tmp_path)
        starts = sorted(run.started_ns for job_runs in runs.values() for run in job_runs)
        for restarted, restarted_ns in restarts:
            acked = [at for at in log.acked_at if at > restarted]
            server_recovery.append(min(acked, default=float("inf")) - restarted)
            ran = [at for at in starts if at > restarted_ns]
            worker_recovery.append((min(ran, default=2**63) - restarted_ns) / 1e9)

        jobs = wait_terminal(client, prefix, list(log.acked.values()), timeout_s=60)
        pool.stop_all()
        runs = read_ledger(tmp_path)
        stored = stored_job_ids(client, prefix)
        # Jobs running when Redis died may run again: their outcome or renewal failed.
        first_kill_ns = restarts[0][1] - int((OUTAGE_S + 1) * 1e9)
        explained = {
            job_id
            for job_id, job_runs in runs.items()
            if len(job_runs) > 1 and job_runs[0].started_ns > first_kill_ns
        }
        check = check_ledger(jobs, runs, explained=explained)
        report(
            "redis-restart",
            enqueued=len(log.acked),
            completed=check.completed,
            lost=len(check.lost),
            duplicated=check.duplicated,
            stored_jobs=len(stored),
            outages=OUTAGES,
            outage_s=OUTAGE_S,
            client_errors=dict(log.errors),
            slowest_call_s=round(log.slowest_call_s, 2),
            server_recovery_s=round(max(server_recovery), 3),
            worker_recovery_s=round(max(worker_recovery), 3),
            statuses=summarize(jobs),
        )
        assert not log.wrong, log.wrong[:5]
        assert not log.gave_up
        assert set(log.errors) <= {"UNAVAILABLE"}, log.errors
        assert log.errors, "no call saw the outage: the test did not test anything"
        assert log.slowest_call_s < CALL_TIMEOUT_S
        assert not check.lost, (len(check.lost), summarize(jobs))
        assert not check.stale_results, [(jobs[j], runs[j]) for j in check.stale_results[:3]]
        assert not check.unexplained_reruns, [runs[j] for j in check.unexplained_reruns[:3]]
        # One job per key: retried enqueues whose first reply was lost made no second job.
        assert all(len(ids) == 1 for ids in log.ids_per_key.values())
        assert stored == set(log.acked.values())
        assert max(server_recovery) < 5.0, server_recovery
        assert max(worker_recovery) < 5.0, worker_recovery
    finally:
        pool.stop_all()
        server.stop()
        client.close()
