"""The wire, old and new side by side: ``uv run --group bench python -m tests.benchmarks.wire``.

The same ``jobqueue-server`` over the same Redis, once with ``JOBQUEUE_WIRE=grpcio``
(grpcio's server: gRPC alone) and once with ``JOBQUEUE_WIRE=http`` (connectrpc on
h2corn: gRPC, Connect and gRPC-Web on one port), measured by the same gRPC
clients — what a gRPC user would notice. Rounds alternate between the two
(ABAB...) so that load from elsewhere on the machine hits both alike, and each
figure is the better of its rounds. Prints a table, writes JSON to
``benchmark-results/``. Every loop is bounded in count, every child in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import redis

from jobqueue.client import AsyncJobClient, JobSpec
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc as pb_grpc
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from mpataki.jobqueue.v1 import worker_pb2_grpc as wpb_grpc
from tests._redis_server import RedisProcess, free_port
from tests.server._process import wait_for_health

from ._common import ROOT, now, payload_bytes, percentile
from ._jobqueue import JOB_TYPE, prefill, timed_calls

WIRES = ("grpcio", "http")


@dataclass(frozen=True)
class Counts:
    sequential: int
    in_flight: int
    bulk: int
    drain: int
    watches: int


FULL = Counts(sequential=5_000, in_flight=10_000, bulk=20_000, drain=20_000, watches=300)
QUICK = Counts(sequential=1_000, in_flight=2_000, bulk=5_000, drain=5_000, watches=100)


class Server:
    """``python -m jobqueue_server`` with one wire, on Redis, in its own process."""

    def __init__(self, wire: str, redis_url: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "JOBQUEUE_WIRE": wire,
            "JOBQUEUE_HOST": "127.0.0.1",
            "JOBQUEUE_PORT": str(self.port),
            "JOBQUEUE_REDIS_URL": redis_url,
            "JOBQUEUE_LOG_LEVEL": "WARNING",
            "JOBQUEUE_SHUTDOWN_GRACE_SECONDS": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobqueue_server"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_health(self.port, 1, timeout_s=30)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


async def enqueue(target: str, count: int, in_flight: int) -> float:
    async with AsyncJobClient(target=target, timeout_s=10) as client:
        payload = payload_bytes()
        await client.enqueue(JOB_TYPE, payload)  # connect outside the timing
        return await timed_calls(lambda: client.enqueue(JOB_TYPE, payload), count, in_flight)


async def bulk(target: str, count: int, batch: int = 1_000) -> float:
    async with AsyncJobClient(target=target, timeout_s=30) as client:
        specs = [JobSpec(JOB_TYPE, payload_bytes()) for _ in range(batch)]
        await client.enqueue(JOB_TYPE, payload_bytes())
        calls = max(count // batch, 1)
        return batch * await timed_calls(lambda: client.enqueue_many(specs), calls, 1)


async def drain(target: str, redis_url: str, count: int, lanes: int = 4) -> float:
    """Claim 100 and settle them COMPLETE, ``lanes`` workers at once, until ``count`` are done."""
    await prefill(redis_url, count)
    async with grpc.aio.insecure_channel(target) as channel:
        workers = wpb_grpc.WorkerServiceStub(channel)
        done = 0

        async def lane() -> None:
            nonlocal done
            for _ in range(count):  # bounded: at most one claim per job
                if done >= count:
                    return
                claimed = await workers.ClaimJobs(
                    wpb.ClaimJobsRequest(types=[JOB_TYPE], max_jobs=100, lease_ms=30_000),
                    timeout=10,
                )
                if not claimed.leases:
                    return
                outcomes = [
                    wpb.Outcome(
                        job_id=lease.job.id, token=lease.token, kind=wpb.OUTCOME_KIND_COMPLETE
                    )
                    for lease in claimed.leases
                ]
                await workers.SettleJobs(wpb.SettleJobsRequest(outcomes=outcomes), timeout=10)
                done += len(outcomes)

        started = now()
        await asyncio.gather(*(lane() for _ in range(lanes)))
        return done / (now() - started)


async def watch_latency(target: str, count: int) -> dict[str, float]:
    """From a CancelJob's start to the watcher seeing CANCELLED: a change's trip to a watcher."""
    async with grpc.aio.insecure_channel(target) as channel:
        jobs = pb_grpc.JobServiceStub(channel)
        seconds: list[float] = []
        for _ in range(count):
            job = (
                await jobs.EnqueueJob(
                    pb.EnqueueJobRequest(type="watched", execution_time_ms=2**42), timeout=5
                )
            ).job
            # grpc-stubs type the stream's read() as object: read through Any.
            stream: Any = jobs.WatchJob(pb.WatchJobRequest(id=job.id), timeout=10)
            first = await stream.read()
            assert first.job.status == pb.JOB_STATUS_PENDING
            started = now()
            await jobs.CancelJob(pb.CancelJobRequest(id=job.id), timeout=5)
            for _ in range(10):  # PENDING again at most a few times, then CANCELLED
                seen = await stream.read()
                if seen is grpc.aio.EOF or seen.job.status == pb.JOB_STATUS_CANCELLED:  # type: ignore[attr-defined]
                    break
            seconds.append(now() - started)
            stream.cancel()
    return {
        "p50_ms": percentile(seconds, 50) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
    }


Workload = Callable[[str], Awaitable[Any]]


def workloads(counts: Counts, redis_url: str) -> dict[str, tuple[str, Workload]]:
    return {
        "enqueue, sequential": ("jobs/s", lambda t: enqueue(t, counts.sequential, 1)),
        "enqueue, 20 in flight": ("jobs/s", lambda t: enqueue(t, counts.in_flight, 20)),
        "bulk enqueue (1,000 a call)": ("jobs/s", lambda t: bulk(t, counts.bulk)),
        "drain: ClaimJobs + SettleJobs": ("jobs/s", lambda t: drain(t, redis_url, counts.drain)),
        "WatchJob: cancel → watcher": ("ms", lambda t: watch_latency(t, counts.watches)),
    }


def better(unit: str, a: Any, b: Any) -> Any:
    if b is None:
        return a
    if isinstance(a, dict):  # latency percentiles: lower is better
        return a if a["p50_ms"] <= b["p50_ms"] else b
    return max(a, b)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    counts = QUICK if args.quick else FULL
    redis_server = RedisProcess()
    redis_server.start()
    flush = redis.Redis.from_url(redis_server.url, socket_timeout=120)
    results: dict[str, dict[str, Any]] = {}
    try:
        for round_number in range(args.rounds):
            for wire in WIRES if round_number % 2 == 0 else tuple(reversed(WIRES)):
                server = Server(wire, redis_server.url)
                try:
                    for name, (unit, workload) in workloads(counts, redis_server.url).items():
                        if args.only and not any(word in name for word in args.only):
                            continue
                        flush.flushall()
                        value = await workload(server.target)
                        row = results.setdefault(name, {"unit": unit})
                        row[wire] = better(unit, value, row.get(wire))
                        print(
                            f"  round {round_number + 1} {wire:<7} {name:<32} {value}", flush=True
                        )
                finally:
                    server.stop()
    finally:
        flush.close()
        redis_server.close()
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| workload | grpcio (gRPC only) | h2corn + connectrpc (one port) | new / old |",
        "|---|---|---|---|",
    ]
    for name, row in results.items():
        old, new = row["grpcio"], row["http"]
        if isinstance(old, dict):
            lines.append(
                f"| {name} (p50 / p99) | {old['p50_ms']:.2f} / {old['p99_ms']:.2f} ms "
                f"| {new['p50_ms']:.2f} / {new['p99_ms']:.2f} ms "
                f"| {new['p50_ms'] / old['p50_ms']:.2f} (lower is better) |"
            )
        else:
            lines.append(
                f"| {name} | {old:,.0f} {row['unit']} | {new:,.0f} {row['unit']} "
                f"| {new / old:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per wire (alternating)")
    parser.add_argument(
        "--only", nargs="*", default=[], help="workloads whose name holds one of these words"
    )
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print()
    print(table(results))
    out = ROOT / "benchmark-results"
    out.mkdir(exist_ok=True)
    path = out / f"wire-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"quick": args.quick, "rounds": args.rounds, **results}, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
