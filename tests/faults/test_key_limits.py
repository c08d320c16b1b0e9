"""Per-key limits under real workers: 100 keys at 50 starts per second each (issue 15).

Four ledger worker processes drain a type whose jobs carry one of 100 limit
keys (and, in a second case, of 10 keys, few enough for the workers to reach
every key's rate), each key with more jobs waiting than its rate lets start
in the run, under a per-key rate of 50 per second. Each run writes its claim time by
Redis's clock (the lease's ``updated_at``, the clock the limit counts by) and
its key to the ledger (``R`` lines). Over the run:

- no key starts more than 50 jobs in any window of 1,000 ms of Redis time
  (the claim's own window, so no slack is needed);
- every key's starts, away from the first and last second, are within ±5%
  of the keys' mean: none is starved, whatever the machine's speed (when the
  workers cannot reach 100 x 50 starts a second, the turns across keys share
  what they can do);
- with 10 keys, which the workers can serve faster than 50 a second each,
  every key starts at least 80% of its rate (a held key waits for its window
  to free, plus a claim's round trip on a busy box): the limit holds keys
  back, it does not idle them;
- a job is started once (never claimed and handed back).

Each case runs ``scale(12, 30)`` seconds of draining (30 s with
JOBQUEUE_FAULTS_LONG=1, the issue's figure), about 35 s in all by default.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from jobqueue.domain import EnqueueRequest, JobService, SystemClock, TypeLimits, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests._redis_server import RedisProcess
from tests.faults import ledger_worker as lw
from tests.faults._processes import WorkerPool
from tests.faults._scenario import report, scale

pytestmark = [pytest.mark.faults, pytest.mark.redis, pytest.mark.timeout(scale(180, 600))]

WORKERS = 4
RATE = 50
WINDOW_MS = 1_000
RUN_S = scale(12, 30)
PER_KEY = RATE * (RUN_S + 2)
"""More than a key can start in the run: no key runs dry, so every key competes throughout."""
EDGE_MS = 1_000
"""Starts within this long of the first or last one are left out of the share check."""


def key_of(index: int) -> str:
    return f"tenant-{index:03d}"


async def enqueue(url: str, prefix: str, keys: int) -> int:
    store = RedisJobStore(RedisStoreSettings(url=url, key_prefix=prefix))
    try:
        await store.set_type_limits(
            lw.KEYED_TYPE, TypeLimits(key_rate=RATE, key_rate_interval_ms=WINDOW_MS)
        )
        service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
        # Interleaved by key, as many producers would send them.
        requests = [
            EnqueueRequest(type=lw.KEYED_TYPE, limit_key=key_of(index % keys))
            for index in range(keys * PER_KEY)
        ]
        for start in range(0, len(requests), 5_000):
            await service.enqueue_many(requests[start : start + 5_000])
        return len(requests)
    finally:
        await store.close()


def run_pool(url: str, prefix: str, folder: Path) -> None:
    pool = WorkerPool.on_redis(folder, url, prefix, concurrency=32, lease_ms=5_000, work_ms=1)
    try:
        pool.spawn_many(WORKERS)
        time.sleep(RUN_S)
    finally:
        pool.stop_all()


def read_keyed_starts(folder: Path) -> list[tuple[int, str, str, int]]:
    """Every ``R`` line: (Redis ms, key, job id, attempt)."""
    starts = []
    for path in folder.glob("ledger-*.log"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 6 and parts[0] == "R":
                _, job_id, attempt, _, at, key = parts
                starts.append((int(at), key, job_id, int(attempt)))
    return sorted(starts)


def busiest_window(stamps: list[int]) -> int:
    """The most starts within any window the limit counts: (t - 1,000 ms, t]."""
    most, low = 0, 0
    for high, at in enumerate(stamps):
        while stamps[low] <= at - WINDOW_MS:
            low += 1
        most = max(most, high - low + 1)
    return most


@pytest.mark.parametrize("keys", [100, 10])
async def test_a_per_key_rate_holds_and_every_key_gets_its_share(
    redis_plain: RedisProcess, prefix: str, tmp_path: Path, keys: int
) -> None:
    enqueued = await enqueue(redis_plain.url, prefix, keys)
    await asyncio.to_thread(run_pool, redis_plain.url, prefix, tmp_path)
    starts = read_keyed_starts(tmp_path)
    assert starts, "no keyed job started"
    by_key: dict[str, list[int]] = defaultdict(list)
    for at, key, _, _ in starts:
        by_key[key].append(at)
    first, last = starts[0][0], starts[-1][0]
    middle = Counter(key for at, key, _, _ in starts if first + EDGE_MS <= at <= last - EDGE_MS)
    mean = sum(middle.values()) / keys
    middle_s = (last - first - 2 * EDGE_MS) / 1000
    busiest = max(busiest_window(stamps) for stamps in by_key.values())
    runs = Counter((job_id, attempt) for _, _, job_id, attempt in starts)
    report(
        "limits-per-key-rate",
        keys=keys,
        rate_per_key=RATE,
        run_s=RUN_S,
        enqueued=enqueued,
        started=len(starts),
        starts_per_s=round(len(starts) / max((last - first) / 1000, 0.001)),
        busiest_key_window=busiest,
        middle_mean=round(mean, 1),
        middle_min=min(middle.values(), default=0),
        middle_max=max(middle.values(), default=0),
        middle_per_key_per_s=round(mean / middle_s, 1),
    )
    assert len(by_key) == keys
    assert busiest <= RATE
    assert max(runs.values()) == 1  # each job started once: never claimed and handed back
    assert len(middle) == keys  # none starved
    assert mean >= 20, "too few starts per key to judge the shares"
    for key, count in middle.items():
        assert abs(count - mean) <= 0.05 * mean, (key, count, mean)
    if keys == 10:
        assert mean / middle_s >= 0.8 * RATE
