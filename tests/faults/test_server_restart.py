"""Scenario 4: the server restarted under client load.

Producers use the client SDK (``AsyncJobClient``) as an application would:
no idempotency keys of their own, so every enqueue carries the key the SDK
generates and keeps across its retries. Two ledger workers take jobs through
the server (``GrpcSource``). The server is stopped — by turns gracefully
(SIGTERM) and by SIGKILL, which loses the replies of calls whose jobs were
already stored — and started again on the same port. The jobs stored in Redis
must be exactly the jobs the SDK acknowledged: none lost, none twice.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from jobqueue.client import AsyncJobClient, JobQueueClientError, RetryPolicy
from tests._redis_server import RedisProcess
from tests.faults._ledger import check_ledger, read_ledger, stored_job_ids, summarize, wait_terminal
from tests.faults._processes import ServerProc, WorkerPool, wait_serving
from tests.faults._scenario import report, scale

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(120, 600))]

RESTARTS = scale(2, 10)
LOAD_BETWEEN_S = 2.0
TASKS = 8
LEASE_MS = 3_000
# Enough retries to outlast a restart (a new server process needs 1-2 s to start).
RETRY = RetryPolicy(max_retries=40, initial_backoff_s=0.05, max_backoff_s=0.5)


async def test_no_duplicate_jobs_across_server_restarts(
    redis_aof: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    server = ServerProc(redis_url=redis_aof.url, prefix=prefix, log_dir=tmp_path)
    server.start()
    pool = WorkerPool(
        tmp_path,
        [
            *("--server", server.target, "--concurrency", "16"),
            *("--lease-ms", str(LEASE_MS), "--work-ms", "10"),
        ],
    )
    client = redis.Redis.from_url(redis_aof.url)
    acked: list[str] = []
    acked_at: list[float] = []
    failures: Counter[str] = Counter()
    slowest = 0.0
    stop = asyncio.Event()

    async def producer(sdk: AsyncJobClient) -> None:
        nonlocal slowest
        while not stop.is_set():
            began = time.monotonic()
            try:
                job = await sdk.enqueue("work")
            except JobQueueClientError as error:
                failures[f"{type(error).__name__}:{getattr(error, 'code', '')}"] += 1
                continue
            finally:
                slowest = max(slowest, time.monotonic() - began)
            acked.append(job.id)
            acked_at.append(time.monotonic())
            await asyncio.sleep(0.02)

    restarts: list[tuple[float, int, str]] = []
    try:
        pool.spawn_many(2)
        async with AsyncJobClient(target=server.target, timeout_s=5.0, retries=RETRY) as sdk:
            producing = [asyncio.create_task(producer(sdk)) for _ in range(TASKS)]
            for number in range(RESTARTS):
                await asyncio.sleep(LOAD_BETWEEN_S)
                how = signal.SIGKILL if number % 2 else signal.SIGTERM
                await asyncio.to_thread(server.stop, how)
                await asyncio.to_thread(server.start)
                restarts.append((time.monotonic(), time.monotonic_ns(), how.name))
            await asyncio.sleep(LOAD_BETWEEN_S)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*producing), 60)

        await asyncio.to_thread(wait_serving, server.port, 10)
        jobs = wait_terminal(client, prefix, acked, timeout_s=60)
        pool.stop_all()
        runs = read_ledger(tmp_path)
        stored = stored_job_ids(client, prefix)
        starts = sorted(run.started_ns for job_runs in runs.values() for run in job_runs)
        client_recovery = max(
            min((at for at in acked_at if at > restarted), default=float("inf")) - restarted
            for restarted, _, _ in restarts
        )
        worker_recovery = max(
            (min((at for at in starts if at > restarted_ns), default=2**63) - restarted_ns) / 1e9
            for _, restarted_ns, _ in restarts
        )
        # Jobs held by a worker while the server was down may run again.
        check = check_ledger(jobs, runs, explained=set(runs))
        report(
            "server-restart",
            enqueued=len(acked),
            completed=check.completed,
            lost=len(check.lost),
            duplicate_jobs=len(stored) - len(set(acked)),
            duplicated=check.duplicated,
            stored_jobs=len(stored),
            restarts=[how for _, _, how in restarts],
            client_failures=dict(failures),
            slowest_enqueue_s=round(slowest, 2),
            client_recovery_s=round(client_recovery, 2),
            worker_recovery_s=round(worker_recovery, 2),
            statuses=summarize(jobs),
        )
        # Every enqueue must succeed: the SDK retries calls the stopping server
        # cancelled or could not take, with the same idempotency key.
        assert not failures, failures
        assert len(acked) == len(set(acked))
        assert stored == set(acked), (len(stored), len(set(acked)))
        assert not check.lost, (len(check.lost), summarize(jobs))
        assert not check.stale_results, [(jobs[j], runs[j]) for j in check.stale_results[:3]]
        assert client_recovery < 5.0
        assert worker_recovery < 10.0
    finally:
        pool.stop_all()
        server.stop()
        client.close()
