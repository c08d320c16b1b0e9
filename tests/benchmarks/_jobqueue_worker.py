"""jobqueue's worker child: imports only what a worker on its path needs (RSS is measured)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from jobqueue.worker import JobContext, JobSource, StoreSource, Worker

from ._common import now, peak_rss_mib, report, rss_parts_mib, signal_ready, stamp_of

JOB_TYPE = "bench"
COUNTER_KEY = "bench:incr"


async def run_worker(
    *,
    redis_url: str,
    target: str,
    mode: str,
    count: int,
    concurrency: int,
    timeout_s: float,
    handler: str = "noop",
    probe: bool = False,
    allocs_path: str = "",
    profile_path: str = "",
) -> None:
    """Drain ``count`` jobs (mode "drain") or record start latencies (mode "latency").

    ``handler`` "incr" makes each job pay one Redis round trip (INCR through
    redis-py's asyncio client, the ecosystem's usual one), as a real handler
    recording its work would; "noop" does nothing. ``probe`` adds the cost
    window of ``_probes`` (CPU, loop iterations, allocations, profile).
    """
    source: JobSource
    if target:
        from jobqueue.worker import GrpcSource

        source = GrpcSource(target)
    else:
        from jobqueue.redis import RedisJobStore, RedisStoreSettings

        source = StoreSource(RedisJobStore(RedisStoreSettings(url=redis_url)), close_store=True)
    counter: Any = None
    if handler == "incr":
        import redis.asyncio

        # redis-py's asyncio pool refuses a 101st connection by default (MaxConnectionsError):
        # a handler per slot needs a pool as large as the slots, as an application sizes it.
        counter = redis.asyncio.Redis.from_url(redis_url, max_connections=max(concurrency, 100))
        await counter.ping()  # connect outside the timing
    worker = Worker(source, concurrency=concurrency)
    done = asyncio.Event()
    latencies: list[float] = []
    seen = errors = 0
    first_error: list[str] = []

    @worker.handler(JOB_TYPE)
    async def noop(job: JobContext) -> None:
        nonlocal seen, errors
        if mode == "latency":
            latencies.append(now() - stamp_of(job.payload))
        if counter is not None:
            try:
                await counter.incr(COUNTER_KEY)
            except Exception as error:
                errors += 1  # the job is retried; the driver refuses a run with errors
                first_error.append(repr(error))
                raise
        seen += 1
        if seen >= count:
            done.set()

    window = None
    if probe:
        from . import _probes

        loop_counter = _probes.LoopCounter(asyncio.get_running_loop())
        window = _probes.Window(loop_counter, allocs_path, profile_path)
    cpu = time.process_time()
    started = now()
    await worker.start()
    if mode == "latency":
        signal_ready()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout_s)
    handled = now()
    rss_parts = rss_parts_mib()  # with the drain's jobs and connections still held
    await worker.stop()
    settled = now()
    probed = window.close() if window is not None else {}
    if counter is not None:
        await counter.aclose()
    report(
        {
            "count": seen,
            "seconds": handled - started,
            "settled_seconds": settled - started,
            "rss_mib": peak_rss_mib(),
            "rss_file_mib": rss_parts.get("file", 0.0),
            "rss_anon_mib": rss_parts.get("anon", 0.0),
            "cpu_s": time.process_time() - cpu,
            "concurrency": concurrency,
            "handler": handler,
            "handler_errors": errors,
            "handler_error": first_error[0] if first_error else "",
            "latencies": latencies,
            "probe": probed,
        }
    )
