"""A worker process for the fault scenarios: every handler run is written to a ledger.

Run as ``python tests/faults/ledger_worker.py --ledger-dir DIR ...``. Each process
appends to its own file ``DIR/ledger-<pid>.log``, one line per event, with
``os.write`` on an ``O_APPEND`` descriptor: a line is in the kernel before the
handler goes on, so it survives a SIGKILL of this process a moment later, and
it does not depend on the Redis the scenario may be breaking.

    S <job id> <attempt> <pid> <monotonic ns>   a handler run started
    E <job id> <attempt> <pid> <monotonic ns>   it returned (the outcome is not stored yet)
    X <job id> <attempt> <pid> <monotonic ns>   it ended otherwise (cancelled, raised)
    R <job id> <attempt> <pid> <redis ms> <key>  a keyed job's claim, by Redis's clock
                                                 (KEYED_TYPE only; read_keyed_starts)

Times are ``CLOCK_MONOTONIC``, which every process of this host shares and
which the clock-skew scenario leaves unfaked (``FAKETIME_DONT_FAKE_MONOTONIC``):
so the runs of all processes, skewed or not, line up on one true time axis,
and a test can tell whether two runs of one job overlapped. A run killed with
its process has no end line; the test takes its process's death as its end.

The ready marker holds this process's ``time.time_ns()`` and
``time.monotonic_ns()`` as it starts serving, so a test can check that a
faked wall clock really reached it.

A completed job's result is ``<pid>:<attempt>`` of the run that produced it, so
a test can tell which run's verdict the store accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jobqueue.domain import RetryPolicy
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import GrpcSource, JobContext, JobSource, StoreSource, Worker, WorkerSettings

WORK_TYPE = "work"
KEYED_TYPE = "keyed"
HEALTHY_TYPE = "slow.healthy"
OVERRUN_TYPE = "slow.overrun"
BLOCKING_TYPE = "slow.blocking"
HANG_TYPE = "slow.hang"
HANG_THREAD_TYPE = "slow.hang-thread"
HANG_FOREVER_TYPE = "slow.hang-forever"
OVERRUN_TIMEOUT_S = 0.3
OVERRUN_ATTEMPTS = 2
BLOCKING_TIMEOUT_S = 0.3
BLOCKING_ATTEMPTS = 2
HANG_TIMEOUT_S = 0.5
HANG_ATTEMPTS = 3
HANG_THREAD_TIMEOUT_S = 0.5
HANG_THREAD_ATTEMPTS = 1
STUCK_CAP_S = 120.0
""""Forever", bounded so that no test process can outlive its suite by much."""


class Ledger:
    def __init__(self, folder: Path) -> None:
        self.pid = os.getpid()
        path = folder / f"ledger-{self.pid}.log"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, event: str, ctx: JobContext) -> None:
        line = f"{event} {ctx.id} {ctx.attempt} {self.pid} {time.monotonic_ns()}\n"
        os.write(self._fd, line.encode())

    def claimed(self, ctx: JobContext, redis_ms: int, key: str | None) -> None:
        """``R``: when the store started this run, by its own clock, and the job's limit key."""
        line = f"R {ctx.id} {ctx.attempt} {self.pid} {redis_ms} {key or '-'}\n"
        os.write(self._fd, line.encode())

    @contextmanager
    def run(self, ctx: JobContext) -> Iterator[None]:
        """``S`` now, then ``E`` when the body returns or ``X`` when it is cancelled or raises.

        A plain context manager serves async handlers too: a cancellation
        arrives as an exception at an ``await`` inside the block.
        """
        self.write("S", ctx)
        try:
            yield
        except BaseException:
            self.write("X", ctx)
            raise
        self.write("E", ctx)


def build_worker(args: argparse.Namespace, ledger: Ledger) -> Worker:
    source: JobSource
    if args.server:
        source = GrpcSource(args.server, timeout_s=5.0)
    else:
        store = RedisJobStore(
            RedisStoreSettings(
                url=args.redis_url, key_prefix=args.prefix, retention_ms=args.retention_ms
            )
        )
        source = StoreSource(store, close_store=True)
    settings = WorkerSettings(
        concurrency=args.concurrency,
        lease_ms=args.lease_ms,
        claim_wait_ms=500,
        requeue_interval_ms=args.requeue_ms,
        shutdown_grace_s=2.0,
        thread_pool_size=4,
        default_retry=RetryPolicy(base_ms=50, cap_ms=500),
        max_error_backoff_s=0.5,
    )
    worker = Worker(source, settings=settings)
    pid = ledger.pid
    work_s = args.work_ms / 1000

    @worker.handler(WORK_TYPE)
    async def work(ctx: JobContext) -> str:
        with ledger.run(ctx):
            await asyncio.sleep(work_s)
        return f"{pid}:{ctx.attempt}"

    @worker.handler(KEYED_TYPE)
    async def keyed(ctx: JobContext) -> str:
        # The lease's job as the claim returned it: updated at the claim, by
        # Redis's clock, the clock the per-key rate limit counts by.
        job = ctx._lease.job
        ledger.claimed(ctx, job.updated_at, job.limit_key)
        with ledger.run(ctx):
            await asyncio.sleep(work_s)
        return f"{pid}:{ctx.attempt}"

    @worker.handler(HEALTHY_TYPE)
    async def healthy(ctx: JobContext) -> str:
        # Runs for several lease lengths: only heartbeats keep the job ours.
        with ledger.run(ctx):
            await asyncio.sleep(float(ctx.payload or b"0.1"))
        return f"{pid}:{ctx.attempt}"

    @worker.handler(OVERRUN_TYPE, timeout_s=OVERRUN_TIMEOUT_S, max_attempts=OVERRUN_ATTEMPTS)
    async def overrun(ctx: JobContext) -> str:
        with ledger.run(ctx):
            await asyncio.sleep(30)
        return f"{pid}:{ctx.attempt}"

    @worker.handler(BLOCKING_TYPE, timeout_s=BLOCKING_TIMEOUT_S, max_attempts=BLOCKING_ATTEMPTS)
    def blocking(ctx: JobContext) -> str:
        # A plain def that ignores its cancelled flag: its thread outlives the timeout.
        with ledger.run(ctx):
            time.sleep(2.0)
        return f"{pid}:{ctx.attempt}"

    @worker.handler(HANG_TYPE, timeout_s=HANG_TIMEOUT_S, max_attempts=HANG_ATTEMPTS)
    async def hang(ctx: JobContext) -> str:
        with ledger.run(ctx):
            await asyncio.Event().wait()
        return "unreachable"

    @worker.handler(
        HANG_THREAD_TYPE, timeout=HANG_THREAD_TIMEOUT_S, max_attempts=HANG_THREAD_ATTEMPTS
    )
    def hang_thread(ctx: JobContext) -> str:
        with ledger.run(ctx):
            threading.Event().wait(STUCK_CAP_S)
        return "unreachable"

    @worker.handler(HANG_FOREVER_TYPE)
    async def hang_forever(ctx: JobContext) -> str:
        # No timeout: only a cancel request (or this worker's death) ends it.
        with ledger.run(ctx):
            await asyncio.sleep(STUCK_CAP_S)
        return f"{pid}:{ctx.attempt}"

    return worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ledger-dir", type=Path, required=True)
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--prefix", default="jq")
    parser.add_argument("--server", default="", help="host:port: take jobs over WorkerService")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--lease-ms", type=int, default=1_500)
    parser.add_argument("--requeue-ms", type=int, default=250)
    parser.add_argument("--retention-ms", type=int, default=3_600_000)
    parser.add_argument("--work-ms", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(process)d %(levelname)s %(message)s"
    )
    ledger = Ledger(args.ledger_dir)
    worker = build_worker(args, ledger)
    asyncio.run(serve(worker, args.ledger_dir / f"ready-{ledger.pid}"))


async def serve(worker: Worker, ready: Path) -> None:
    """``Worker.run``, plus a marker file once SIGTERM is handled and the worker started."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await worker.start()
    # Written aside and renamed: a test polling for the marker never reads half of it.
    aside = ready.with_suffix(".tmp")
    aside.write_text(f"{time.time_ns()} {time.monotonic_ns()}")
    aside.replace(ready)
    await stop.wait()
    await worker.stop()


if __name__ == "__main__":
    main()
