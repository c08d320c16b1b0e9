"""Redis commands per job of enqueue, claim and settle, plain and with limit keys.

Counts what Redis runs (``INFO commandstats``: the commands scripts call
included, EVALSHA and the measuring calls left out) for a drain of
``JOBS`` jobs: one batch enqueue, claims of ``CLAIM`` jobs, one settle per
claim. Counts, not times, so a busy machine does not change them.

    uv run python -m tests.benchmarks.key_costs [redis-url]

Without a URL it starts a redis-server of its own on a free loopback port.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis

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

JOBS = 1_000
CLAIM = 10
_LEFT_OUT = {"evalsha", "eval", "info", "config|resetstat", "config", "script|load", "script"}


async def commands(raw: aioredis.Redis) -> int:
    stats = await raw.info("commandstats")
    return sum(
        int(row["calls"])
        for name, row in stats.items()
        if name.removeprefix("cmdstat_") not in _LEFT_OUT
    )


async def drain(
    url: str, job_type: str, keys: Callable[[int], str | None], limits: TypeLimits | None
) -> dict[str, float]:
    """Commands per job of each step of one drain of ``JOBS`` jobs of ``job_type``."""
    store = RedisJobStore(RedisStoreSettings(url=url, key_prefix=f"kc-{uuid.uuid4().hex[:8]}"))
    raw = aioredis.Redis.from_url(url)
    try:
        service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
        if limits is not None:
            await store.set_type_limits(job_type, limits)
        # Built by keyword only when set: the same script measures code before limit keys.
        requests = [
            EnqueueRequest(type=job_type)
            if keys(i) is None
            else EnqueueRequest(type=job_type, limit_key=keys(i))
            for i in range(JOBS)
        ]
        # Warm up: scripts loaded, config published, before counting starts.
        await store.claim([job_type], limit=1, lease_ms=30_000)
        before = await commands(raw)
        await service.enqueue_many(requests)
        added = await commands(raw)
        claimed = settled = 0
        taken = 0
        while taken < JOBS:
            start = await commands(raw)
            leases = await store.claim([job_type], limit=CLAIM, lease_ms=30_000)
            middle = await commands(raw)
            outcomes: Sequence[Outcome] = [
                Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
                for lease in leases
            ]
            await store.settle(outcomes)
            end = await commands(raw)
            claimed += middle - start
            settled += end - middle
            taken += len(leases)
            if not leases:
                raise RuntimeError("a claim found nothing before the drain ended")
        return {
            "enqueue": (added - before) / JOBS,
            "claim": claimed / JOBS,
            "settle": settled / JOBS,
        }
    finally:
        await raw.aclose()
        await store.close()


async def main(url: str) -> None:
    cases: list[tuple[str, Callable[[int], str | None], TypeLimits | None]] = [
        ("plain", lambda i: None, None),
        ("plain, concurrency limit", lambda i: None, TypeLimits(concurrency=100_000)),
    ]
    if "limit_key" in EnqueueRequest.__dataclass_fields__:
        cases += [
            ("100 keys, no per-key limit", lambda i: f"k{i % 100}", None),
            ("100 keys, key_concurrency", lambda i: f"k{i % 100}", TypeLimits(key_concurrency=50)),
            ("100 keys, key_rate", lambda i: f"k{i % 100}", TypeLimits(key_rate=1_000_000)),
        ]
    print(f"Redis commands per job, drain of {JOBS} jobs, claims of {CLAIM}")
    print(f"{'case':32} {'enqueue':>8} {'claim':>8} {'settle':>8}")
    for name, keys, limits in cases:
        row = await drain(url, "t", keys, limits)
        print(f"{name:32} {row['enqueue']:8.2f} {row['claim']:8.2f} {row['settle']:8.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(sys.argv[1]))
    else:
        from tests._redis_process import redis_for_tests

        with redis_for_tests() as started:
            asyncio.run(main(started))
