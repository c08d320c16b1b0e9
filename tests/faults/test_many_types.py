"""Scenario 10: many job types with a long history: costs must follow work, not history.

The store is filled through its own API — enqueue, claim and settle in
batches of about 1,000 jobs — with ``TYPES`` job types and ``FINISHED``
completed jobs (the issue's figures, 100,000 types and 1M jobs, under
``JOBQUEUE_FAULTS_LONG=1``; a tenth of each by default). Then, on that store:

- a lease sweep (``requeue_expired``), each round after a few leases of random
  types expired, must not block Redis for 5 ms or more (the issue asks it of
  the p99): every command the sweeps send is timed by Redis itself
  (``SLOWLOG`` with a threshold of 0),
  and the CPU time of Redis's main thread per sweep is measured beside it (on
  a busy machine the slow log also counts the time Redis waited for a CPU).
  Both clocks run on while a virtual machine's host lends the core elsewhere:
  a fresh CI machine measured two sweeps of 30 at 12 and 17 ms of CPU where
  the median was 1.9 ms, and a tail of 30 samples is its largest one. So the
  tail is bounded without a clock: every command a sweep's script runs is in
  the slow log, and no sweep may run more than a fixed number of them per
  lease it hands back, whatever the number of types (a walk over 10,000 types
  runs 10,345). The clocks bound the median, which a host's pause does not
  move, and their p99 is reported;
- ``stats()`` must cost Redis under 25 ms (the median of its calls in the slow
  log) and answer in under 150 ms (timed here; mostly the client mapping
  1,000 rows, the most it lists);
- a 10-job page of ``list_jobs`` without a type filter must take under 20 ms
  (median), for the first page, the next page, and the first page of
  COMPLETED jobs.

When a sweep or stats walks every type ever seen, or a listing visits every
type and status, these costs grow with the number of types, whatever the work.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
import redis

from jobqueue.domain import (
    Job,
    JobQuery,
    JobStatus,
    Outcome,
    OutcomeKind,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests._redis_server import RedisProcess
from tests.faults._scenario import report, scale

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(240, 1_800))]

TYPES = scale(10_000, 100_000)
FINISHED = scale(100_000, 1_000_000)
BATCH = 1_000
PARALLEL = 4
SWEEP_ROUNDS = scale(30, 100)
EXPIRED_PER_ROUND = 20
CALLS = 15
SWEEP_MS = 5.0
SCRIPT_COMMANDS_PER_LEASE = 40
"""Commands a sweep's script may run per lease it hands back (about 20 here), beyond
``SCRIPT_COMMANDS_FIXED``: a walk over every type would run one or more per type."""
SCRIPT_COMMANDS_FIXED = 20
STATS_MS = 150.0
STATS_REDIS_MS = 25.0
PAGE_MS = 20.0
SLOWLOG_LENGTH = 100_000
"""Room for every command of a sweep round, the ones scripts run included."""


def new_jobs(types: Sequence[str], per_type: int, ids: UuidV7Generator) -> list[Job]:
    now = time.time_ns() // 1_000_000
    return [
        Job(
            id=ids.new_id(),
            type=job_type,
            payload=b"",
            status=JobStatus.PENDING,
            execution_time_ms=now,
            created_at=now,
            updated_at=now,
        )
        for job_type in types
        for _ in range(per_type)
    ]


async def fill(store: RedisJobStore, types: list[str], per_type: int) -> None:
    """Enqueue, claim and complete ``per_type`` jobs of every type, ~BATCH jobs a step."""
    ids = UuidV7Generator()
    types_per_step = max(1, BATCH // per_type)
    steps = [types[i : i + types_per_step] for i in range(0, len(types), types_per_step)]
    gate = asyncio.Semaphore(PARALLEL)

    async def step(chunk: list[str]) -> None:
        async with gate:
            jobs = await store.add(new_jobs(chunk, per_type, ids))
            leases = []
            for _ in range(per_type + 3):  # bounded: one round per job of a type, and slack
                leases += await store.claim(chunk, limit=BATCH, lease_ms=3_600_000)
                if len(leases) >= len(jobs):
                    break
            assert len(leases) == len(jobs), (len(leases), len(jobs))
            applied = await store.settle(
                [
                    Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
                    for lease in leases
                ]
            )
            assert all(applied)

    await asyncio.gather(*(step(chunk) for chunk in steps))


def slowlog_durations_us(client: redis.Redis) -> tuple[list[tuple[str, int]], int]:
    """(command, µs) of every client command logged since the last reset, and how many
    commands scripts ran in that time; then reset the log.

    Commands a script runs are logged too, from the pseudo-client ``?:0``:
    they are part of their script's time, so they are counted, not timed.
    """
    entries = client.slowlog_get(SLOWLOG_LENGTH)
    client.slowlog_reset()
    found = []
    by_scripts = 0
    for entry in entries:
        if entry.get("client_address") in (b"?:0", "?:0"):
            by_scripts += 1
            continue
        command = entry["command"]
        name = (command.split()[0] if isinstance(command, bytes) else b"?").decode().upper()
        if name not in {"SLOWLOG", "CONFIG", "INFO"}:  # the measurement's own
            found.append((name, int(entry["duration"])))
    return found, by_scripts


def redis_cpu_s(client: redis.Redis) -> float:
    """CPU time Redis's main thread has used (user + system), in seconds.

    Unlike the slow log's wall time, it does not grow while other processes
    of a busy machine hold the CPU, so it tells a sweep's own cost from the
    time Redis spent waiting to be scheduled. It includes the INFO call.
    """
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"])


async def timed_ms(call: Callable[[], Awaitable[object]], times: int) -> list[float]:
    spent = []
    for _ in range(times):
        began = time.perf_counter()
        await call()
        spent.append((time.perf_counter() - began) * 1_000)
    return spent


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@dataclass
class Sweeps:
    """What a series of sweep rounds measured."""

    commands: list[tuple[str, int]] = field(default_factory=list)
    """(command, µs) of each command the sweeps sent, timed by Redis."""
    cpu_ms: list[float] = field(default_factory=list)
    """Redis's main-thread CPU per sweep call."""
    work: list[tuple[int, int]] = field(default_factory=list)
    """(commands its script ran, leases it handed back) per sweep call."""
    requeued: int = 0
    expired: int = 0


async def sweep_series(
    store: RedisJobStore, client: redis.Redis, rng: random.Random, types: list[str]
) -> Sweeps:
    """Sweeps, each round after some leases of random types expired."""
    found_all = Sweeps()
    for _ in range(SWEEP_ROUNDS):
        chosen = rng.sample(types, EXPIRED_PER_ROUND)
        await store.add(new_jobs(chosen, 1, UuidV7Generator()))
        leased = await store.claim(chosen, limit=EXPIRED_PER_ROUND, lease_ms=20)
        found_all.expired += len(leased)
        await asyncio.sleep(0.05)
        client.slowlog_reset()
        # A sweep may leave some for the next one (a bounded step, or another
        # sweeper's turn): sweep until this round's leases are back, within 3 s.
        give_up_at = time.monotonic() + 3
        found = 0
        while found < len(leased) and time.monotonic() < give_up_at:
            cpu_before = redis_cpu_s(client)
            handed_back = await store.requeue_expired()
            found_all.cpu_ms.append((redis_cpu_s(client) - cpu_before) * 1_000)
            commands, by_script = slowlog_durations_us(client)
            found_all.commands += commands
            found_all.work.append((by_script, handed_back))
            found += handed_back
            if found < len(leased):
                await asyncio.sleep(0.05)
        found_all.requeued += found
    return found_all


async def test_sweeps_stats_and_pages_cost_the_same_with_many_types(
    redis_plain: RedisProcess, prefix: str
) -> None:
    store = RedisJobStore(RedisStoreSettings(url=redis_plain.url, key_prefix=prefix))
    client = redis.Redis.from_url(redis_plain.url)
    rng = random.Random(3)
    types = [f"t{number:06d}" for number in range(TYPES)]
    try:
        began = time.monotonic()
        await fill(store, types, FINISHED // TYPES)
        fill_s = time.monotonic() - began
        memory_mib = int(client.info("memory")["used_memory"]) / 2**20

        # The first call after Redis starts compiles the script (EVAL): once per
        # Redis process, not per sweep, so it happens before the measurement.
        await store.requeue_expired()
        client.config_set("slowlog-log-slower-than", 0)
        client.config_set("slowlog-max-len", SLOWLOG_LENGTH)
        client.slowlog_reset()

        sweeps = await sweep_series(store, client, rng, types)
        sweep_commands, sweep_cpu_ms = sweeps.commands, sweeps.cpu_ms
        requeued, expired = sweeps.requeued, sweeps.expired
        sweep_ms = [us / 1_000 for _, us in sweep_commands]

        client.slowlog_reset()
        stats_ms = await timed_ms(store.stats, CALLS)
        stats_redis_ms = [us / 1_000 for _, us in slowlog_durations_us(client)[0]]
        stats = await store.stats()
        # A store may list a bounded number of types and count the rest as omitted.
        counted_types = len(stats.types) + stats.omitted_types
        short_rows = [row for row in stats.types if row.completed != FINISHED // TYPES]

        first = await store.list_jobs(JobQuery(limit=10))
        page_ms = await timed_ms(lambda: store.list_jobs(JobQuery(limit=10)), CALLS)
        next_ms = await timed_ms(
            lambda: store.list_jobs(JobQuery(limit=10, cursor=first.next_cursor)), CALLS
        )
        done_query = JobQuery(status=JobStatus.COMPLETED, limit=10)
        done_page = await store.list_jobs(done_query)
        done_ms = await timed_ms(lambda: store.list_jobs(done_query), CALLS)

        report(
            "many-types",
            types=TYPES,
            finished=FINISHED,
            fill_s=round(fill_s, 1),
            redis_used_mib=round(memory_mib),
            expired_leases=expired,
            requeued=requeued,
            sweep_commands=len(sweep_ms),
            sweep_command_kinds=sorted({name for name, _ in sweep_commands}),
            sweep_redis_ms_p50_p99_max=[
                round(statistics.median(sweep_ms), 3) if sweep_ms else None,
                round(p99(sweep_ms), 3) if sweep_ms else None,
                round(max(sweep_ms, default=0), 3),
            ],
            stats_ms_median_max=[round(statistics.median(stats_ms), 1), round(max(stats_ms), 1)],
            sweep_redis_cpu_ms_p50_p99_max=[
                round(statistics.median(sweep_cpu_ms), 3) if sweep_cpu_ms else None,
                round(p99(sweep_cpu_ms), 3) if sweep_cpu_ms else None,
                round(max(sweep_cpu_ms, default=0), 3),
            ],
            sweep_script_commands_per_lease_max=round(
                max(ran / max(back, 1) for ran, back in sweeps.work), 1
            ),
            stats_redis_ms_median_max=[
                round(statistics.median(stats_redis_ms), 1) if stats_redis_ms else None,
                round(max(stats_redis_ms, default=0), 1),
            ],
            stats_rows=len(stats.types),
            stats_omitted_types=stats.omitted_types,
            page_ms_median_max=[round(statistics.median(page_ms), 1), round(max(page_ms), 1)],
            next_page_ms_median_max=[round(statistics.median(next_ms), 1), round(max(next_ms), 1)],
            completed_page_ms_median_max=[
                round(statistics.median(done_ms), 1),
                round(max(done_ms), 1),
            ],
        )
        # The store holds what was built, and the pages are full.
        assert counted_types == TYPES, (len(stats.types), stats.omitted_types)
        assert not short_rows, short_rows[:3]
        assert len(first.jobs) == 10
        assert first.next_cursor
        assert len(done_page.jobs) == 10
        assert requeued == expired, (requeued, expired)
        assert sweep_ms, "no sweep command was logged"
        # Every sweep's work follows the leases it hands back, not the types: counted,
        # so no pause of the host can pass or fail it.
        overworked = [
            (ran, back)
            for ran, back in sweeps.work
            if ran > SCRIPT_COMMANDS_FIXED + SCRIPT_COMMANDS_PER_LEASE * back
        ]
        assert not overworked, overworked[:5]
        # What a sweep costs Redis, at the median: its CPU, and its time in SLOWLOG (wall
        # time in Redis, which counts the moments another process held the core).
        assert statistics.median(sweep_cpu_ms) < SWEEP_MS, sweep_cpu_ms
        slowest = sorted(sweep_commands, key=lambda c: -c[1])[:5]
        assert statistics.median(sweep_ms) < SWEEP_MS, slowest
        # Stats list at most 1,000 types and count the rest: Redis's part is the
        # bound that matters (3.1 ms median here); the call's wall time is mostly
        # the client mapping 1,000 rows, 59 ms on this session's machine (it was
        # under 50 before), so its bound only guards against work in the number
        # of types (10,000 rows would be about ten times that).
        assert statistics.median(stats_redis_ms) < STATS_REDIS_MS, stats_redis_ms
        assert statistics.median(stats_ms) < STATS_MS, stats_ms
        assert statistics.median(page_ms) < PAGE_MS, page_ms
        assert statistics.median(next_ms) < PAGE_MS, next_ms
        assert statistics.median(done_ms) < PAGE_MS, done_ms
    finally:
        await store.close()
        client.close()
