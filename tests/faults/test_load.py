"""Scenario 7: load — 50 concurrent client tasks enqueue for a bounded time while workers drain.

No call may fail; the RSS of the server and of each worker, sampled all along,
must stay flat (no growth trend beyond 10% once warmed up); and with a short
retention, Redis must return to its baseline once the finished jobs expire:
no job, key or index entry left behind.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from jobqueue.client import AsyncJobClient, JobQueueClientError
from tests._redis_server import RedisProcess
from tests.faults._ledger import read_ledger
from tests.faults._processes import ServerProc, WorkerPool, rss_kib
from tests.faults._scenario import report, scale

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(120, 600))]

CLIENT_TASKS = 50
LOAD_S = scale(5, 30)
RETENTION_S = 2
SAMPLE_EVERY_S = 0.25
MIB = 1024 * 1024


def trend(samples: list[int]) -> float:
    """Growth of the last third over the first third of the samples after a warm-up third."""
    settled = samples[len(samples) // 3 :]
    third = max(len(settled) // 3, 1)
    first, last = statistics.mean(settled[:third]), statistics.mean(settled[-third:])
    return last / first - 1


def leftovers(client: redis.Redis, prefix: str) -> list[bytes]:
    """Keys that hold a job, a key, or index entries (the types set and wake-up lists may stay)."""
    found = []
    for key in client.scan_iter(match=f"{{{prefix}}}:*", count=1_000):
        name = key.decode().split(":", 2)[1]
        if name in ("j", "k", "q", "r") or (name == "d" and client.zcard(key)):
            found.append(key)
    return found


async def test_memory_stays_flat_under_load(
    redis_aof: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    server = ServerProc(
        redis_url=redis_aof.url,
        prefix=prefix,
        log_dir=tmp_path,
        env={"JOBQUEUE_RETENTION_SECONDS": str(RETENTION_S)},
    )
    server.start()
    pool = WorkerPool.on_redis(
        tmp_path,
        redis_aof.url,
        prefix,
        concurrency=64,
        lease_ms=5000,
        work_ms=1,
        extra=("--retention-ms", str(RETENTION_S * 1000)),
    )
    client = redis.Redis.from_url(redis_aof.url)
    acked: list[str] = []
    failures: Counter[str] = Counter()
    samples: dict[int, list[int]] = {}
    try:
        workers = pool.spawn_many(2)
        baseline = client.info("memory")
        watched = [server.pid, *workers]
        samples = {pid: [] for pid in watched}
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                for pid in watched:
                    samples[pid].append(rss_kib(pid))
                await asyncio.sleep(SAMPLE_EVERY_S)

        async def producer(sdk: AsyncJobClient, until: float) -> None:
            while time.monotonic() < until:
                try:
                    acked.append((await sdk.enqueue("work")).id)
                except JobQueueClientError as error:
                    failures[type(error).__name__] += 1

        sampling = asyncio.create_task(sample())
        started = time.monotonic()
        async with AsyncJobClient(target=server.target, timeout_s=10.0) as sdk:
            until = started + LOAD_S
            await asyncio.gather(*(producer(sdk, until) for _ in range(CLIENT_TASKS)))
        load_s = time.monotonic() - started
        # Finished jobs vanish after the short retention, so completion is read off the
        # ledger (every job's handler returned) and the indexes (nothing PENDING or RUNNING).
        drained_s = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = read_ledger(tmp_path)
            ended = sum(1 for job_id in acked if any(r.returned for r in runs.get(job_id, [])))
            busy = client.zcard(f"{{{prefix}}}:q:work") + client.zcard(f"{{{prefix}}}:r:work")
            if ended == len(acked) and not busy:
                drained_s = time.monotonic() - started
                break
            await asyncio.sleep(0.2)
        stop.set()
        await sampling
        failed = client.zcard(f"{{{prefix}}}:d:work:4") + client.zcard(f"{{{prefix}}}:d:work:5")
        reruns = sum(1 for job_id in acked if len(runs.get(job_id, [])) > 1)

        # Finished jobs expire after the retention; the server's sweep trims the indexes.
        expired_s = None
        for _ in range(100):
            if not leftovers(client, prefix):
                expired_s = time.monotonic() - started - (drained_s or 0)
                break
            await asyncio.sleep(0.2)
        after = client.info("memory")
        trends = {pid: trend(rss) for pid, rss in samples.items()}
        report(
            "load",
            client_tasks=CLIENT_TASKS,
            load_s=round(load_s, 1),
            enqueued=len(acked),
            enqueue_per_s=round(len(acked) / load_s),
            completed=ended,
            failed_or_cancelled=failed,
            duplicated=reruns,
            failures=dict(failures),
            drained_s=None if drained_s is None else round(drained_s, 1),
            redis_memory_stats={
                k: v
                for k, v in client.memory_stats().items()
                if k in ("overhead.total", "dataset.bytes", "keys.count", "clients.normal")
            },
            rss_mib={
                ("server" if pid == server.pid else f"worker-{pid}"): [
                    round(min(rss) / 1024, 1),
                    round(max(rss) / 1024, 1),
                ]
                for pid, rss in samples.items()
            },
            rss_trend_pct={
                ("server" if pid == server.pid else f"worker-{pid}"): round(100 * t, 1)
                for pid, t in trends.items()
            },
            redis_dataset_kib=[
                baseline["used_memory_dataset"] // 1024,
                after["used_memory_dataset"] // 1024,
            ],
            redis_used_kib=[baseline["used_memory"] // 1024, after["used_memory"] // 1024],
            expired_after_drain_s=None if expired_s is None else round(expired_s, 1),
        )
        assert not failures, failures
        assert acked
        assert drained_s is not None, (ended, len(acked))
        assert not failed
        assert not reruns
        assert all(t <= 0.10 for t in trends.values()), trends
        assert expired_s is not None, leftovers(client, prefix)[:5]
        # No job data is left (above); what Redis still counts as its data set besides
        # the types set is bookkeeping that does not grow with the jobs (about 0.5 MiB
        # after 10,000 or 60,000 jobs alike), so it is bounded, not compared exactly.
        assert after["used_memory_dataset"] <= baseline["used_memory_dataset"] * 1.1 + MIB
    finally:
        pool.stop_all()
        server.stop()
        client.close()
