"""Limits under real workers: 4 ledger worker processes, each with room for 8 jobs at once.

1. A concurrency limit of 5 on the type: the ledger's start and end times
   (CLOCK_MONOTONIC, shared by every process) never show more than 5 runs at
   once, and do show 5 (the limit is reached, not just respected).
2. A rate limit of 50 starts per second: the starts span at least the time
   the rate allows, and no second-long window holds many more than 50 (the
   ledger's times trail the claims' by the delivery time; the window is the
   store's, so a few ms of slack is allowed at each edge).

Per-key limits (turns across a producer's keys, the issue's 100 keys at 50/s
each) are in test_key_limits.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis

from jobqueue.domain import EnqueueRequest, JobService, SystemClock, TypeLimits, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests._redis_server import RedisProcess
from tests.faults import ledger_worker as lw
from tests.faults._ledger import read_ledger, summarize, wait_terminal
from tests.faults._processes import WorkerPool
from tests.faults._scenario import report, scale

pytestmark = [pytest.mark.faults, pytest.mark.redis, pytest.mark.timeout(scale(120, 600))]

WORKERS = 4
CONCURRENCY = 5
JOBS = scale(200, 2_000)
RATE = 50
RATED_JOBS = scale(150, 1_500)
"""At 50/s: 3 s by default, 30 s long."""


async def enqueue(url: str, prefix: str, count: int, limits: TypeLimits) -> list[str]:
    store = RedisJobStore(RedisStoreSettings(url=url, key_prefix=prefix))
    try:
        await store.set_type_limits(lw.WORK_TYPE, limits)
        service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
        ids: list[str] = []
        for start in range(0, count, 500):
            jobs = await service.enqueue_many(
                [EnqueueRequest(type=lw.WORK_TYPE) for _ in range(min(500, count - start))]
            )
            ids += [job.id for job in jobs]
        return ids
    finally:
        await store.close()


def run_pool(url: str, prefix: str, folder: Path, ids: list[str], work_ms: int) -> dict[str, int]:
    pool = WorkerPool(
        folder,
        [
            *("--redis-url", url, "--prefix", prefix),
            *("--concurrency", "8", "--work-ms", str(work_ms)),
        ],
    )
    client = redis.Redis.from_url(url)
    try:
        pool.spawn_many(WORKERS)
        jobs = wait_terminal(client, prefix, ids, timeout_s=scale(90, 500))
    finally:
        pool.stop_all()
        client.close()
    return summarize(jobs)


def most_at_once(folder: Path) -> tuple[int, int]:
    """The most runs in progress at one instant, and the number of runs."""
    events: list[tuple[int, int]] = []
    runs = [run for job_runs in read_ledger(folder).values() for run in job_runs]
    for run in runs:
        assert run.ended_ns is not None, run  # no worker was killed
        events += [(run.started_ns, 1), (run.ended_ns, -1)]
    events.sort(key=lambda event: (event[0], event[1]))  # an end before a start at one instant
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak, len(runs)


async def test_a_concurrency_limit_holds_across_four_worker_processes(
    redis_plain: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    ids = await enqueue(redis_plain.url, prefix, JOBS, TypeLimits(concurrency=CONCURRENCY))
    started = time.monotonic()
    counts = await asyncio.to_thread(run_pool, redis_plain.url, prefix, tmp_path, ids, 50)
    peak, runs = most_at_once(tmp_path)
    report(
        "limits-concurrency",
        jobs=JOBS,
        workers=WORKERS,
        limit=CONCURRENCY,
        most_running_at_once=peak,
        runs=runs,
        seconds=round(time.monotonic() - started, 1),
    )
    assert counts == {"COMPLETED": JOBS}
    assert runs == JOBS  # never claimed and handed back: one run per job
    assert peak == CONCURRENCY


async def test_a_rate_limit_spaces_the_starts(
    redis_plain: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    ids = await enqueue(redis_plain.url, prefix, RATED_JOBS, TypeLimits(rate=RATE))
    counts = await asyncio.to_thread(run_pool, redis_plain.url, prefix, tmp_path, ids, 5)
    starts = sorted(
        run.started_ns for job_runs in read_ledger(tmp_path).values() for run in job_runs
    )
    span_s = (starts[-1] - starts[0]) / 1e9
    # The most starts in any window of 1 s minus the slack at its edges.
    window_ns, slack_ns = 1_000_000_000, 100_000_000
    busiest, low = 0, 0
    for high, at in enumerate(starts):
        while starts[low] <= at - (window_ns - slack_ns):
            low += 1
        busiest = max(busiest, high - low + 1)
    report("limits-rate", jobs=RATED_JOBS, rate=RATE, span_s=round(span_s, 2), busiest=busiest)
    assert counts == {"COMPLETED": RATED_JOBS}
    assert len(starts) == RATED_JOBS
    assert busiest <= RATE
    # 150 starts at 50/s: three windows, so at least two seconds apart end to end.
    assert span_s >= (RATED_JOBS / RATE - 1) - 0.2
