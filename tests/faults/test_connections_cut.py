"""Scenario 3: ``CLIENT KILL TYPE normal`` in a loop under load.

Every 100 ms every normal connection to Redis — the server's, the workers',
their blocking waits — is cut, while producers enqueue through the server and
two ledger workers drain. Nothing may be lost, and afterwards throughput must
recover: a burst drains about as fast as the same burst before the cuts.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis

from tests._redis_server import RedisProcess
from tests.faults._ledger import check_ledger, read_ledger, stored_job_ids, summarize, wait_terminal
from tests.faults._processes import ServerProc, WorkerPool
from tests.faults._producers import ProducerLog, produce
from tests.faults._scenario import report, scale

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(120, 600))]

CUT_FOR_S = scale(4, 30)
CUT_EVERY_S = 0.1
BURST = 500
LEASE_MS = 1_500


async def burst(target: str, client: redis.Redis, prefix: str, run: str, log: ProducerLog) -> float:
    """Enqueue BURST jobs as fast as the server takes them; seconds until all completed."""
    started = time.monotonic()
    before = set(log.acked)
    await produce(target, run=run, tasks=16, count=BURST, log=log)
    ids = [job_id for key, job_id in log.acked.items() if key not in before]
    jobs = await asyncio.to_thread(wait_terminal, client, prefix, ids, timeout_s=30)
    assert all(job is not None and job.status == 3 for job in jobs.values()), summarize(jobs)
    return time.monotonic() - started


async def test_nothing_is_lost_when_connections_are_cut(
    redis_aof: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    server = ServerProc(redis_url=redis_aof.url, prefix=prefix, log_dir=tmp_path)
    server.start()
    pool = WorkerPool.on_redis(tmp_path, redis_aof.url, prefix, concurrency=16, lease_ms=LEASE_MS)
    client = redis.Redis.from_url(redis_aof.url)
    log = ProducerLog()
    try:
        pool.spawn_many(2)
        before_s = await burst(server.target, client, prefix, f"{prefix}-before", log)

        producing = asyncio.create_task(
            produce(server.target, run=f"{prefix}-cut", tasks=8, duration_s=CUT_FOR_S, rate=200)
        )
        cuts = killed = 0
        deadline = time.monotonic() + CUT_FOR_S
        while time.monotonic() < deadline:
            # SKIPME yes (the default): this connection survives its own command.
            killed += int(client.client_kill_filter(_type="normal"))
            cuts += 1
            await asyncio.sleep(CUT_EVERY_S)
        cut_log = await asyncio.wait_for(producing, 60)

        after_s = await burst(server.target, client, prefix, f"{prefix}-after", log)
        acked = {**log.acked, **cut_log.acked}
        jobs = wait_terminal(client, prefix, list(acked.values()), timeout_s=60)
        pool.stop_all()
        runs = read_ledger(tmp_path)
        # A cut settle or renewal may let a lease expire: those jobs may run again.
        check = check_ledger(jobs, runs, explained=set(runs))
        stored = stored_job_ids(client, prefix)
        report(
            "connections-cut",
            enqueued=len(acked),
            completed=check.completed,
            lost=len(check.lost),
            duplicated=check.duplicated,
            stored_jobs=len(stored),
            cut_rounds=cuts,
            connections_killed=killed,
            client_errors=dict(cut_log.errors),
            burst_before_s=round(before_s, 2),
            burst_after_s=round(after_s, 2),
            statuses=summarize(jobs),
        )
        assert killed > cuts, "the loop cut nothing"
        assert not cut_log.wrong, cut_log.wrong[:5]
        assert not cut_log.gave_up
        assert set(cut_log.errors) <= {"UNAVAILABLE"}, cut_log.errors
        assert not check.lost, (len(check.lost), summarize(jobs))
        assert not check.stale_results, [(jobs[j], runs[j]) for j in check.stale_results[:3]]
        assert stored == set(acked.values())
        assert after_s < 2 * before_s + 1.0
    finally:
        pool.stop_all()
        server.stop()
        client.close()
