"""Drain with priorities in use: ``uv run --group bench python -m tests.benchmarks.priorities``.

Starts its own redis-server (loopback, free port, no persistence) and drains
the same backlog straight through the store (claim 100, complete them, as the
direct worker's loop does) in three shapes, alternating them over rounds so a
busy machine's minute lands on each alike:

- ``plain``: every job priority 0 (one queue per type, as before priorities);
- ``3 levels``: priorities -5, 0 and 5 in equal parts;
- ``11 levels``: priorities -5 to 5 in equal parts;
- ``concurrency 50``: priority 0, the type limited to 50 running at once
  (each claim of 100 then takes 50: twice the claims).

Prints jobs/s (median of the rounds), the scripts' Redis time and the commands
they ran per job, and µs per script call (claim and settle; INFO commandstats,
reset after the untimed enqueue), and checks that every drain took the jobs
highest priority first.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time

import redis

from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    Outcome,
    OutcomeKind,
    SystemClock,
    TypeLimits,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests._redis_server import RedisProcess

SHAPES: dict[str, tuple[tuple[int, ...], TypeLimits]] = {
    "plain": ((0,), TypeLimits()),
    "3 levels": ((-5, 0, 5), TypeLimits()),
    "11 levels": (tuple(range(-5, 6)), TypeLimits()),
    "concurrency 50": ((0,), TypeLimits(concurrency=50)),
}
BATCH = 100


async def drain(
    url: str, raw: redis.Redis, prefix: str, count: int, shape: tuple[tuple[int, ...], TypeLimits]
) -> tuple[float, int]:
    """Enqueue (untimed, not counted) then drain ``count`` jobs; jobs/s and the claims made."""
    levels, limits = shape
    store = RedisJobStore(RedisStoreSettings(url=url, key_prefix=prefix))
    await store.set_type_limits("bench", limits)
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    cycle = itertools.cycle(levels)
    for start in range(0, count, 1_000):
        await service.enqueue_many(
            [
                EnqueueRequest(type="bench", priority=next(cycle))
                for _ in range(min(1_000, count - start))
            ]
        )
    raw.config_resetstat()  # Redis's figures count the drain only
    done = claims = 0
    last = max(levels)
    started = time.perf_counter()
    while done < count:
        leases = await store.claim(["bench"], limit=BATCH, lease_ms=60_000)
        claims += 1
        for lease in leases:
            assert lease.job.priority <= last, "a lower priority went before a higher one"
            last = lease.job.priority
        await store.settle(
            [Outcome(job_id=x.job.id, token=x.token, kind=OutcomeKind.COMPLETE) for x in leases]
        )
        done += len(leases)
    seconds = time.perf_counter() - started
    await store.close()
    return count / seconds, claims


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = RedisProcess()
    server.start()
    raw = redis.Redis.from_url(server.url)
    results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in SHAPES}
    try:
        for round_ in range(args.rounds):
            names = list(SHAPES) if round_ % 2 == 0 else list(reversed(SHAPES))
            for name in names:
                raw.flushall()
                run = drain(server.url, raw, f"p{round_}", args.jobs, SHAPES[name])
                rate, claims = asyncio.run(run)
                stats = raw.info("commandstats")
                # Commands run by scripts are counted too; the scripts' own
                # time (evalsha) holds theirs, so it alone is Redis's time per job.
                inner = sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_evalsha")
                evalsha = stats.get("cmdstat_evalsha", {"usec": 0, "calls": 1})
                per_call = int(evalsha["usec"]) / max(int(evalsha["calls"]), 1)
                row = (rate, int(evalsha["usec"]) / args.jobs, inner / args.jobs, per_call)
                results[name].append(row)
                print(
                    f"round {round_} {name:<10} {rate:>10,.0f} jobs/s ({claims} claims)", flush=True
                )
    finally:
        raw.close()
        server.close()
    print("\n| shape | jobs/s (median) | scripts' µs/job | commands/job | µs per script call |")
    print("|---|---:|---:|---:|---:|")
    for name, rows in results.items():
        rate = statistics.median(r[0] for r in rows)
        usec, cmds, per_call = (statistics.median(r[i] for r in rows) for i in (1, 2, 3))
        print(f"| {name} | {rate:,.0f} | {usec:.1f} | {cmds:.2f} | {per_call:.0f} |")


if __name__ == "__main__":
    main()
