"""Scenario 5: slow and stuck handlers.

One ledger worker (1 s leases, a pool of 4 handler threads) gets, all at once:
handlers that run for several lease lengths (healthy: heartbeats must keep
their leases), async handlers that overrun their timeout or hang on an event,
thread handlers that block past their timeout or for good, and a handler
without a timeout that hangs until it is cancelled — and, meanwhile, a stream
of ordinary 10 ms jobs. The worker must stay responsive (the ordinary jobs
complete), healthy jobs must complete on their first attempt, timed-out jobs
must be retried exactly as configured and then FAILED, the hung job must
stay RUNNING on one lease until it is cancelled, and the job whose thread is
stuck for good must stay RUNNING on its first attempt: a thread cannot be
killed, so its attempt keeps its lease until the thread returns. No attempt of a job may
start while an earlier one still runs — in particular not while the thread of
a handler past its timeout is still blocked (the ledger's start and end
lines, on the monotonic clock).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from jobqueue.client import AsyncJobClient, JobStatus
from tests._redis_server import RedisProcess
from tests.faults import ledger_worker as lw
from tests.faults._ledger import read_jobs, read_ledger, summarize, wait_terminal
from tests.faults._processes import ServerProc, WorkerPool
from tests.faults._scenario import report, scale
from tests.faults._timeline import overlapping_runs

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(120, 300))]

LEASE_MS = 1_000
HEALTHY_S = 3.5
ORDINARY = scale(300, 3_000)


async def test_slow_and_stuck_handlers_leave_the_worker_responsive(
    redis_aof: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    server = ServerProc(redis_url=redis_aof.url, prefix=prefix, log_dir=tmp_path)
    server.start()
    pool = WorkerPool.on_redis(tmp_path, redis_aof.url, prefix, concurrency=32, lease_ms=LEASE_MS)
    client = redis.Redis.from_url(redis_aof.url)
    try:
        (pid,) = pool.spawn_many(1)
        async with AsyncJobClient(target=server.target, timeout_s=5.0) as sdk:
            healthy = [
                (await sdk.enqueue(lw.HEALTHY_TYPE, str(HEALTHY_S).encode())).id for _ in range(3)
            ]
            timed_out = {
                lw.OVERRUN_TYPE: [(await sdk.enqueue(lw.OVERRUN_TYPE)).id for _ in range(2)],
                lw.BLOCKING_TYPE: [(await sdk.enqueue(lw.BLOCKING_TYPE)).id for _ in range(2)],
                lw.HANG_TYPE: [(await sdk.enqueue(lw.HANG_TYPE)).id],
            }
            stuck = (await sdk.enqueue(lw.HANG_THREAD_TYPE)).id
            forever = (await sdk.enqueue(lw.HANG_FOREVER_TYPE)).id

            # Ordinary jobs, paced over the time the others are stuck.
            started = time.monotonic()
            ordinary = []
            for _ in range(ORDINARY):
                ordinary.append((await sdk.enqueue(lw.WORK_TYPE)).id)
                await asyncio.sleep(HEALTHY_S / ORDINARY)
            done = wait_terminal(client, prefix, ordinary, timeout_s=20)
            ordinary_s = time.monotonic() - started

            # The job without a timeout: still on its first lease, several lease lengths later.
            await asyncio.sleep(max(0.0, 3 * LEASE_MS / 1000 - (time.monotonic() - started)))
            hung = await sdk.get(forever)
            cancelled = await sdk.cancel(forever)
            ended = await sdk.wait(forever, timeout_s=10)

        finished = wait_terminal(
            client, prefix, healthy + [j for ids in timed_out.values() for j in ids], timeout_s=30
        )
        stuck_job = read_jobs(client, prefix, [stuck])[stuck]
        runs = read_ledger(tmp_path)
        pool.kill(pid)
        overlaps = overlapping_runs(runs, pool.exited)
        report(
            "slow-handlers",
            ordinary=len(ordinary),
            ordinary_statuses=summarize(done),
            ordinary_s=round(ordinary_s, 2),
            statuses=summarize(finished),
            runs={t: sum(len(runs.get(j, [])) for j in ids) for t, ids in timed_out.items()},
            hung_attempts=hung.attempts,
            stuck_thread=None if stuck_job is None else summarize({stuck: stuck_job}),
            overlapping_runs=len(overlaps),
        )

        assert all(job is not None and job.status == 3 for job in done.values()), summarize(done)
        for job_id in healthy:
            job = finished[job_id]
            assert job is not None
            assert (job.status, job.attempts) == (3, 1), job
            assert len(runs[job_id]) == 1
        expected_attempts = {
            lw.OVERRUN_TYPE: lw.OVERRUN_ATTEMPTS,
            lw.BLOCKING_TYPE: lw.BLOCKING_ATTEMPTS,
            lw.HANG_TYPE: lw.HANG_ATTEMPTS,
        }
        for job_type, ids in timed_out.items():
            for job_id in ids:
                job = finished[job_id]
                assert job is not None
                assert job.status == 4, (job_type, job)
                assert job.attempts == expected_attempts[job_type], (job_type, job)
                assert b"HandlerTimeout" in (job.error or b""), job.error
                # A thread handler queued behind busy threads may time out before it starts.
                assert 1 <= len(runs[job_id]) <= job.attempts, (job_type, runs[job_id])
        assert not overlaps, overlaps[:3]
        # Seconds past its timeout, its thread still blocked: the attempt holds its lease.
        assert stuck_job is not None
        assert (stuck_job.status, stuck_job.attempts) == (2, 1), stuck_job
        assert len(runs[stuck]) == 1, runs[stuck]
        assert (hung.status, hung.attempts) == (JobStatus.RUNNING, 1), hung
        assert cancelled.cancel_requested
        assert ended.status is JobStatus.CANCELLED
        assert read_jobs(client, prefix, [forever])[forever] is not None
    finally:
        pool.stop_all()
        server.stop()
        client.close()


async def test_a_worker_with_a_stuck_thread_handler_exits_on_sigterm(
    redis_aof: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    server = ServerProc(redis_url=redis_aof.url, prefix=prefix, log_dir=tmp_path)
    server.start()
    pool = WorkerPool(
        tmp_path, ["--redis-url", redis_aof.url, "--prefix", prefix, "--lease-ms", str(LEASE_MS)]
    )
    client = redis.Redis.from_url(redis_aof.url)
    try:
        (pid,) = pool.spawn_many(1)
        async with AsyncJobClient(target=server.target, timeout_s=5.0) as sdk:
            job_id = (await sdk.enqueue(lw.HANG_THREAD_TYPE)).id
            for _ in range(200):  # its run starts within 10 s
                if job_id in read_ledger(tmp_path):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(lw.HANG_THREAD_TIMEOUT_S + 0.5)
            stuck = await sdk.get(job_id)
        # Past its timeout, its thread stuck: still RUNNING on its only attempt.
        assert (stuck.status, stuck.attempts) == (JobStatus.RUNNING, 1), stuck
        process = pool.processes[pid]
        process.send_signal(signal.SIGTERM)
        # The worker's shutdown grace is 2 s; give it 3 s more.
        try:
            code = await asyncio.to_thread(process.wait, 5.0)
        except subprocess.TimeoutExpired:
            pytest.fail("the worker did not exit within 5 s of SIGTERM")
        assert code == 0
        # Stopped with the thread still stuck past its timeout: the attempt failed.
        ended = wait_terminal(client, prefix, [job_id], timeout_s=10)[job_id]
        assert ended is not None
        assert ended.status == 4, ended
        assert b"HandlerTimeout" in (ended.error or b""), ended.error
    finally:
        for process in pool.processes.values():
            process.kill()
            process.wait(5)
        pool.processes.clear()
        server.stop()
        client.close()
