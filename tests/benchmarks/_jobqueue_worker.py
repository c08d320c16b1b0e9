"""jobqueue's worker child: imports only what a worker on its path needs (RSS is measured)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from jobqueue.worker import JobContext, JobSource, StoreSource, Worker

from ._common import now, peak_rss_mib, report, signal_ready, stamp_of

JOB_TYPE = "bench"


async def run_worker(
    *, redis_url: str, target: str, mode: str, count: int, concurrency: int, timeout_s: float
) -> None:
    """Drain ``count`` jobs (mode "drain") or record start latencies (mode "latency")."""
    source: JobSource
    if target:
        from jobqueue.worker import GrpcSource

        source = GrpcSource(target)
    else:
        from jobqueue.redis import RedisJobStore, RedisStoreSettings

        source = StoreSource(RedisJobStore(RedisStoreSettings(url=redis_url)), close_store=True)
    worker = Worker(source, concurrency=concurrency)
    done = asyncio.Event()
    latencies: list[float] = []
    seen = 0

    @worker.handler(JOB_TYPE)
    async def noop(job: JobContext) -> None:
        nonlocal seen
        if mode == "latency":
            latencies.append(now() - stamp_of(job.payload))
        seen += 1
        if seen >= count:
            done.set()

    cpu = time.process_time()
    started = now()
    await worker.start()
    if mode == "latency":
        signal_ready()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout_s)
    handled = now()
    await worker.stop()
    settled = now()
    report(
        {
            "count": seen,
            "seconds": handled - started,
            "settled_seconds": settled - started,
            "rss_mib": peak_rss_mib(),
            "cpu_s": time.process_time() - cpu,
            "concurrency": concurrency,
            "latencies": latencies,
        }
    )
