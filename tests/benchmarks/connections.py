"""The store's hot calls on its multiplexed connection and on redis-py's pooled client.

``uv run python -m tests.benchmarks.connections [--rounds 3]``

One redis-server (loopback, no persistence), one process, uvloop off (the
server's default event loop is uvloop; the ratio is what matters here).
Workloads, each run on both connections in alternating rounds, medians kept:

- ``add x1``: one caller enqueuing one job at a time (latency-bound);
- ``add x64``: 64 callers at once, one job each call (the group commit
  combines them on either connection);
- ``get x64``: 64 callers reading jobs by id (HGETALL, pipelined or pooled);
- ``claim+settle x1`` and ``x16``: loops that claim one job and complete it.

Bounded: every workload is a fixed count of calls.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable

from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests._redis_server import RedisProcess

CONNECTIONS = ("multiplexed", "redis-py")
Workload = Callable[[RedisJobStore], Awaitable[int]]


def store_for(url: str, connection: str) -> RedisJobStore:
    return RedisJobStore(
        RedisStoreSettings(
            url=url,
            key_prefix="bench-" + secrets.token_hex(3),
            connection=connection,  # type: ignore[arg-type]
        )
    )


async def add_serial(store: RedisJobStore, count: int = 2_000) -> int:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    for _ in range(count):
        await service.enqueue("t", b"x")
    return count


async def add_concurrent(store: RedisJobStore, callers: int = 64, each: int = 60) -> int:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())

    async def caller() -> None:
        for _ in range(each):
            await service.enqueue("t", b"x")

    await asyncio.gather(*(caller() for _ in range(callers)))
    return callers * each


async def get_concurrent(store: RedisJobStore, callers: int = 64, each: int = 100) -> int:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    job = await service.enqueue("g", b"x")

    async def caller() -> None:
        for _ in range(each):
            await store.get(job.id)

    await asyncio.gather(*(caller() for _ in range(callers)))
    return callers * each


def claim_settle(loops: int, total: int) -> Workload:
    async def run(store: RedisJobStore) -> int:
        service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
        for start in range(0, total, 500):
            await _fill(service, min(500, total - start))
        done = 0

        async def loop() -> None:
            nonlocal done
            for _ in range(total):  # bounded by the jobs there are
                leases = await store.claim(["c"], limit=1, lease_ms=30_000)
                if not leases:
                    return
                await store.settle(
                    [
                        Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
                        for lease in leases
                    ]
                )
                done += 1

        await asyncio.gather(*(loop() for _ in range(loops)))
        return done

    return run


async def _fill(service: JobService, count: int) -> None:
    await service.enqueue_many([EnqueueRequest(type="c", payload=b"x")] * count)


async def measure(url: str, connection: str, workload: Workload) -> float:
    store = store_for(url, connection)
    try:
        await store.ping()
        started = time.perf_counter()
        count = await workload(store)
        return count / (time.perf_counter() - started)
    finally:
        await store.close()


async def main(rounds: int) -> None:
    workloads: dict[str, Workload] = {
        "add x1": add_serial,
        "add x64": add_concurrent,
        "get x64": get_concurrent,
        "claim+settle x1": claim_settle(1, 1_500),
        "claim+settle x16": claim_settle(16, 3_000),
    }
    server = RedisProcess()
    server.start()
    try:
        results: dict[tuple[str, str], list[float]] = {}
        for _ in range(rounds):
            for name, workload in workloads.items():
                for connection in CONNECTIONS:
                    rate = await measure(server.url, connection, workload)
                    results.setdefault((name, connection), []).append(rate)
        print(f"{'workload':<18} {'multiplexed/s':>14} {'redis-py/s':>12} {'ratio':>7}")
        for name in workloads:
            fast = statistics.median(results[(name, "multiplexed")])
            pooled = statistics.median(results[(name, "redis-py")])
            print(f"{name:<18} {fast:>14,.0f} {pooled:>12,.0f} {fast / pooled:>7.2f}")
    finally:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args().rounds))
