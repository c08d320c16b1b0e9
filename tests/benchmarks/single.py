"""Single enqueue through the server against its floor: ``python -m tests.benchmarks.single``.

The floor is the same stack answering ``EnqueueJob`` without doing anything:
``WireApp`` under h2corn (the server's own transport, connectrpc's gRPC
handling, the path table) with a ``JobServicer`` whose ``EnqueueJob`` returns a
canned job, called by the same SDK (``AsyncJobClient.enqueue``, one call at a
time). The issue's target for single enqueue through gRPC is >= 85 % of it.

Each tree (``--baseline-tree``, and HEAD: this checkout or ``--head-tree``)
runs its own server, floor and producer (PYTHONPATH on its ``*/src``, as
compare.py does). A round measures, for each tree in an order that alternates
by round: the floor, then ``jobqueue-server`` on Redis. Per call it reports the
rate, the server's CPU µs (``/proc/<pid>/stat``, every thread: h2corn's Rust
threads too) and the producer's CPU µs; a figure is the median of rounds.
Every child has a timeout; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from tests._redis_server import RedisProcess, free_port
from tests.server._process import wait_for_health

from ._common import ROOT, Child, payload_bytes


def tree_env(tree: Path | None) -> dict[str, str]:
    """PYTHONPATH on a tree's sources; None is this checkout (the virtualenv's installs)."""
    if tree is None:
        return {}
    paths = sorted(tree.glob("packages/*/src")) + sorted(tree.glob("services/*/src"))
    if not paths:
        raise SystemExit(f"{tree} has no packages/*/src: not a jobqueue tree")
    return {"PYTHONPATH": os.pathsep.join(str(path) for path in paths)}


class ServerProcess:
    """A server child (the real one or the floor) whose CPU time can be read from /proc."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_health(port, 1, timeout_s=30)
        except BaseException:
            self.stop()
            raise

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_s(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def real_server(tree: Path | None, redis_url: str) -> ServerProcess:
    port = free_port()
    env = {
        **os.environ,
        **tree_env(tree),
        "JOBQUEUE_HOST": "127.0.0.1",
        "JOBQUEUE_PORT": str(port),
        "JOBQUEUE_REDIS_URL": redis_url,
        "JOBQUEUE_LOG_LEVEL": "WARNING",
        "JOBQUEUE_SHUTDOWN_GRACE_SECONDS": "1",
    }
    return ServerProcess([sys.executable, "-m", "jobqueue_server"], env, port)


def floor_server(tree: Path | None) -> ServerProcess:
    port = free_port()
    env = {**os.environ, **tree_env(tree)}
    command = [sys.executable, "-m", "tests.benchmarks.single", "--serve-floor", str(port)]
    return ServerProcess(command, env, port)


async def serve_floor(port: int) -> None:
    """The floor: ``WireApp`` under h2corn, whose EnqueueJob answers a canned job (uvloop)."""
    from typing import cast

    from jobqueue.connect import WireApp, start_http_server
    from jobqueue.grpc import JobServicer, StoreHealth, WorkerServicer
    from jobqueue.memory import MemoryJobStore
    from mpataki.jobqueue.v1 import jobqueue_pb2 as pb

    canned = pb.EnqueueJobResponse(
        job=pb.Job(id="0" * 36, type="bench", payload=payload_bytes(), status=pb.JOB_STATUS_PENDING)
    )

    class NoopJobServicer(JobServicer):
        async def EnqueueJob(self, request: Any, context: Any) -> Any:
            return canned

    store = MemoryJobStore()
    health = StoreHealth(store, services=[])
    app = WireApp(
        job_servicer=NoopJobServicer(cast(Any, None)),
        worker_servicer=WorkerServicer(store),
        health=health,
    )
    await health.start()
    server = await start_http_server(app, address=f"127.0.0.1:{port}", max_message_bytes=4 << 20)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def produce(tree: Path | None, target: str, count: int, timeout_s: float) -> dict[str, Any]:
    child = Child(
        [
            "jq-producer",
            "--workload",
            "enqueue-grpc",
            "--target",
            target,
            "--count",
            str(count),
            "--uvloop",
            "--timeout",
            str(timeout_s),
        ],
        tree_env(tree),
    )
    child.start()
    try:
        return child.result(timeout_s)
    finally:
        child.close()


def measure(
    server: ServerProcess, tree: Path | None, count: int, timeout_s: float
) -> dict[str, float]:
    before = server.cpu_s()
    result = produce(tree, server.target, count, timeout_s)
    # The producer's first call (outside its timing) is in the server's window too.
    return {
        "rate": result["rate"],
        "server_us": (server.cpu_s() - before) / (count + 1) * 1e6,
        "client_us": result["cpu_s"] / (count + 1) * 1e6,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    sides: list[tuple[str, Path | None]] = [("head", args.head_tree)]
    if args.baseline_tree is not None:
        sides.insert(0, ("base", args.baseline_tree))
    redis_server = RedisProcess()
    redis_server.start()
    flush = redis.Redis.from_url(redis_server.url, socket_timeout=60)
    samples: dict[str, list[dict[str, float]]] = {}
    try:
        for round_number in range(args.rounds):
            order = sides if round_number % 2 == 0 else sides[::-1]
            for name, tree in order:
                for kind in ("floor", "server"):
                    flush.flushall()
                    server = (
                        floor_server(tree)
                        if kind == "floor"
                        else real_server(tree, redis_server.url)
                    )
                    try:
                        sample = measure(server, tree, args.count, args.child_timeout)
                    finally:
                        server.stop()
                    samples.setdefault(f"{name} {kind}", []).append(sample)
                    print(f"  round {round_number + 1} {name} {kind:<6} {_fmt(sample)}", flush=True)
    finally:
        flush.close()
        redis_server.close()
    return {
        key: {field: statistics.median(s[field] for s in rows) for field in rows[0]}
        | {"rates": [s["rate"] for s in rows]}
        for key, rows in samples.items()
    }


def _fmt(sample: dict[str, float]) -> str:
    return (
        f"{sample['rate']:,.0f} calls/s, server {sample['server_us']:.0f} µs/call, "
        f"client {sample['client_us']:.0f} µs/call"
    )


def table(results: dict[str, Any]) -> str:
    lines = [
        "| tree | floor calls/s | server calls/s | server / floor | server CPU µs/call (floor) "
        "| client CPU µs/call (floor) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("base", "head"):
        floor, server = results.get(f"{name} floor"), results.get(f"{name} server")
        if floor is None or server is None:
            continue
        lines.append(
            f"| {name} | {floor['rate']:,.0f} | {server['rate']:,.0f} "
            f"| {server['rate'] / floor['rate']:.2f} "
            f"| {server['server_us']:.0f} ({floor['server_us']:.0f}) "
            f"| {server['client_us']:.0f} ({floor['client_us']:.0f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--serve-floor", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--baseline-tree", type=Path, default=None)
    parser.add_argument("--head-tree", type=Path, default=None, help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=3_000, help="calls per measurement")
    parser.add_argument("--child-timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.serve_floor:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve_floor(args.serve_floor))
        return
    started = os.getloadavg()
    results = run(args)
    ended = os.getloadavg()
    print()
    print(table(results))
    print(f"\nload average {started[0]:.2f} at the start, {ended[0]:.2f} at the end")
    out = ROOT / "benchmark-results"
    out.mkdir(exist_ok=True)
    path = out / f"single-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"load": [started[0], ended[0]], **results}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
