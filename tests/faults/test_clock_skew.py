"""Scenario 8: servers and workers whose clocks are 60 s fast or slow, under load with kills.

Three servers (honest, +60 s, -60 s) and five ledger workers — direct
(``StoreSource``) ones with honest, fast and slow clocks, and gRPC ones with a
fast clock behind the slow server and a slow clock behind the fast one — share
one Redis. libfaketime shifts the wall clock of each skewed process
(``LD_PRELOAD``, ``FAKETIME=+60s``) and leaves its monotonic clock true
(``FAKETIME_DONT_FAKE_MONOTONIC=1``), so the ledger's monotonic times stay on
one axis with the test's. Producers enqueue through all three servers; every
third job is scheduled 1-4 s ahead by the test's honest clock. A chaos loop
SIGKILLs a random worker every ~0.75 s and starts a replacement with the same
clock.

Redis's clock is the only one that may decide: no acknowledged job may be
lost, no scheduled job may start before it is due (by the true clock), and no
two runs of one job may overlap. When callers' clocks decide instead, a fast
worker claims scheduled jobs early, a slow one receives leases that are
already expired (so another worker runs the job at the same time), and a fast
server's sweep hands live leases to a second worker.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests._redis_server import RedisProcess
from tests.faults._ledger import check_ledger, read_ledger, summarize, wait_terminal
from tests.faults._processes import ServerProc, WorkerPool
from tests.faults._producers import produce
from tests.faults._scenario import report, scale
from tests.faults._timeline import (
    LIBFAKETIME,
    early_runs,
    overlapping_runs,
    read_child_clock,
    ready_clock,
    skewed_env,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(150, 900))]

SKEWS = (0, 60, -60)
JOBS = scale(900, 9_000)
KILLS = scale(8, 80)
KILL_EVERY_S = 0.75
LEASE_MS = 1_500
SCHEDULED_EVERY = 3
"""Every third job is scheduled ahead; the others are due at once."""
DELAY_MS = (1_000, 4_000)
CLOCK_SLACK_S = 2.0
"""How far a measured skew may be from the one asked for (start-up time, not drift)."""


def schedule(index: int) -> int | None:
    if index % SCHEDULED_EVERY:
        return None
    return random.Random(index).randint(*DELAY_MS)


async def test_skewed_clocks_run_no_job_early_or_twice_at_once(
    redis_plain: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    if not LIBFAKETIME.exists():
        pytest.fail(f"{LIBFAKETIME} is missing: apt-get install faketime", pytrace=False)
    # The fake clock really reaches a child process, and monotonic stays shared.
    for skew in SKEWS[1:]:
        reading = read_child_clock(skewed_env(skew))
        assert abs(reading.wall_offset_s - skew) < CLOCK_SLACK_S, (skew, reading)
        assert abs(reading.monotonic_offset_s) < CLOCK_SLACK_S, (skew, reading)

    servers: dict[int, ServerProc] = {}
    for skew in SKEWS:
        log_dir = tmp_path / f"server{skew:+d}"
        log_dir.mkdir()
        servers[skew] = ServerProc(
            redis_url=redis_plain.url, prefix=prefix, log_dir=log_dir, env=skewed_env(skew)
        )
    common = ["--concurrency", "4", "--lease-ms", str(LEASE_MS), "--work-ms", "10"]
    direct = ["--redis-url", redis_plain.url, "--prefix", prefix, *common]
    pools = {
        "direct+0": (0, WorkerPool(tmp_path, direct, name="direct+0")),
        "direct+60": (60, WorkerPool(tmp_path, direct, env=skewed_env(60), name="direct+60")),
        "direct-60": (-60, WorkerPool(tmp_path, direct, env=skewed_env(-60), name="direct-60")),
        "grpc+60": (
            60,
            WorkerPool(
                tmp_path,
                ["--server", servers[-60].target, *common],
                env=skewed_env(60),
                name="grpc+60",
            ),
        ),
        "grpc-60": (
            -60,
            WorkerPool(
                tmp_path,
                ["--server", servers[60].target, *common],
                env=skewed_env(-60),
                name="grpc-60",
            ),
        ),
    }
    client = redis.Redis.from_url(redis_plain.url)
    rng = random.Random(11)
    try:
        for server in servers.values():
            server.start()
        measured: dict[str, float] = {}
        for name, (skew, pool) in pools.items():
            (pid,) = pool.spawn_many(1)
            measured[name] = ready_clock(tmp_path / f"ready-{pid}")
            assert abs(measured[name] - skew) < CLOCK_SLACK_S, (name, measured[name])

        rate = JOBS / (KILLS * KILL_EVERY_S)
        producing = [
            asyncio.create_task(
                produce(
                    server.target,
                    run=f"{prefix}{skew:+d}",
                    tasks=4,
                    count=JOBS // len(SKEWS),
                    rate=rate / len(SKEWS),
                    delay_ms=schedule,
                )
            )
            for skew, server in servers.items()
        ]
        started = time.monotonic()
        kills = 0
        while kills < KILLS and time.monotonic() - started < KILLS * KILL_EVERY_S * 3:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * KILL_EVERY_S)
            victims = [(pool, pid) for _, pool in pools.values() for pid in pool.alive]
            if victims:
                pool, pid = rng.choice(victims)
                pool.kill(pid)
                kills += 1
                pool.spawn()
        for _, pool in pools.values():
            pool.wait_ready()
        logs = await asyncio.wait_for(asyncio.gather(*producing), 120)
        acked = {job_id for log in logs for job_id in log.acked.values()}
        due_ns = {job_id: due for log in logs for job_id, due in log.due_ns.items()}

        jobs = wait_terminal(client, prefix, sorted(acked), timeout_s=60)
        drained_s = time.monotonic() - started
        for _, pool in pools.values():
            pool.stop_all()
        runs = read_ledger(tmp_path)
        killed = {pid: at for _, pool in pools.values() for pid, at in pool.killed.items()}
        exited = {pid: at for _, pool in pools.values() for pid, at in pool.exited.items()}
        check = check_ledger(jobs, runs, killed_pids=killed)
        overlaps = overlapping_runs(runs, exited)
        early = early_runs(runs, due_ns)
        pool_of = {pid: name for name, (_, pool) in pools.items() for pid in pool.exited}
        runs_per_pool = Counter(
            pool_of.get(run.pid, "?") for job_runs in runs.values() for run in job_runs
        )
        slack = [
            (min(run.started_ns for run in runs[job_id]) - due) / 1e9
            for job_id, due in due_ns.items()
            if runs.get(job_id)
        ]
        report(
            "clock-skew",
            enqueued=len(acked),
            scheduled=len(due_ns),
            completed=check.completed,
            lost=len(check.lost),
            early_runs=len(early),
            earliest_start_after_due_s=round(min(slack, default=0.0), 4),
            overlapping_runs=len(overlaps),
            duplicated=check.duplicated,
            unexplained_reruns=len(check.unexplained_reruns),
            stale_results=len(check.stale_results),
            kills=kills,
            measured_skew_s={name: round(value, 2) for name, value in measured.items()},
            runs_per_pool=dict(runs_per_pool),
            producer_errors=sum(log.error_count for log in logs),
            statuses=summarize(jobs),
            drained_s=round(drained_s, 1),
        )
        assert kills == KILLS
        assert not [wrong for log in logs for wrong in log.wrong][:5]
        assert len(acked) == JOBS // len(SKEWS) * len(SKEWS)
        assert not check.lost, (len(check.lost), summarize(jobs))
        assert not check.never_ran, check.never_ran[:5]
        assert not early, sorted(early, key=lambda item: -item[1])[:5]
        assert not overlaps, overlaps[:3]
        assert not check.stale_results, [(jobs[j], runs[j]) for j in check.stale_results[:3]]
        # Every clock took part: a pool that ran nothing would prove nothing.
        assert set(runs_per_pool) >= set(pools), runs_per_pool
    finally:
        for _, pool in pools.values():
            pool.stop_all()
        for server in servers.values():
            server.stop()
        client.close()
