"""jobqueue against BullMQ and the best Python peers, side by side, round after round.

``uv run --group bench python -m tests.benchmarks.versus [--rounds 2] [--quick]``

The same workloads for every system, each in a process of its own: drain N
prefilled jobs with one worker process, bulk enqueue in batches of 1,000,
sequential single enqueue, start latency at 100 jobs/s, the worker's peak RSS.
Drains run with two handlers: a no-op, and one Redis round trip (INCR through
the ecosystem's usual client: redis-py's asyncio client for the Python async
systems, its blocking one for the thread-based peers, ioredis for BullMQ).
Async systems run at concurrency 100 and at their documented default.

Why rounds and ratios: the machine is shared. A round runs every system once,
in an order that rotates each round; each row reports every round's figure and
its ratio to BullMQ (c=100 for drains) in the same round. BullMQ rows are
skipped, with the reason, while ``tests/benchmarks/bullmq/node_modules`` is
absent (``npm ci --prefix tests/benchmarks/bullmq``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from tests._bytecode import compile_bytecode
from tests._redis_server import RedisProcess, free_port

from . import _bullmq, _peers
from ._common import ROOT, Child, percentile
from ._report import results_record, stamp, write_results
from ._versus_table import table

BULLMQ_DEFAULT = 10
"""BullMQ's Worker runs one job at a time unless told; 10 is the issue's 'default' row."""
JQ_DEFAULT = 100
"""WorkerSettings.concurrency's default; the older suite runs 500 (run.py)."""
ASYNC_PEER_DEFAULTS = {"taskiq": 100, "saq": 50}


@dataclass(frozen=True)
class System:
    """One row's system: its kind (jq-direct, jq-server, bullmq, or a peer) and concurrency."""

    kind: str
    concurrency: int = 0

    @property
    def label(self) -> str:
        names = {"jq-direct": "jobqueue direct", "jq-server": "jobqueue via server"}
        name = names.get(self.kind, self.kind)
        return f"{name} c={self.concurrency}" if self.concurrency else name


@dataclass
class Versus:
    args: argparse.Namespace
    url: str
    port: int
    rows: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    details: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    server: Child | None = None
    target: str = ""

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(self.url, socket_timeout=120)
        self.bullmq_missing = _bullmq.unavailable()
        if self.bullmq_missing:
            self.skipped["BullMQ"] = self.bullmq_missing

    # -- plumbing ----------------------------------------------------------------------

    def record(self, workload: str, system: str, value: float, **detail: Any) -> None:
        self.rows.setdefault((workload, system), []).append(value)
        self.details.setdefault((workload, system), []).append(detail)
        extra = " ".join(f"{k}={v}" for k, v in detail.items())
        print(f"  {workload:<28} {system:<30} {value:>12,.1f}  {extra}", flush=True)

    def py_child(self, *args: str) -> Child:
        child = Child([*args, "--uvloop", "--timeout", str(self.args.child_timeout)])
        child.start()
        return child

    def result(self, child: Child) -> dict[str, Any]:
        try:
            return child.result(self.args.child_timeout + 30)
        except Exception as error:
            raise RuntimeError(f"{child.args[:3]}: {error}\n{child.stderr_tail()}") from error
        finally:
            child.close()

    def start_server(self) -> None:
        port = free_port()
        self.server = self.py_child("jq-server", "--redis-url", self.url, "--port", str(port))
        self.server.wait_ready()
        self.target = f"127.0.0.1:{port}"

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def produce(self, workload: str, count: int, target: str = "") -> dict[str, Any]:
        return self.result(
            self.py_child(
                "jq-producer",
                "--workload",
                workload,
                "--redis-url",
                self.url,
                "--target",
                target,
                "--count",
                str(count),
            )
        )

    # -- drain ---------------------------------------------------------------------------

    def drain_systems(self) -> list[System]:
        systems = [System("jq-direct", c) for c in (JQ_DEFAULT, 500)]
        systems += [System("jq-server", c) for c in (JQ_DEFAULT, 500)]
        if not self.bullmq_missing:
            systems += [System("bullmq", c) for c in (BULLMQ_DEFAULT, 100)]
        for peer in self.args.peers:
            default = ASYNC_PEER_DEFAULTS.get(peer)
            if default is None:
                systems.append(System(peer, _peers.CONCURRENCY[peer][0]))
            else:
                systems += [System(peer, c) for c in sorted({default, 100})]
        return systems

    async def drain(self, system: System, handler: str) -> None:
        n = self.args.drain_count
        self.redis.flushall()
        if system.kind == "bullmq":
            _bullmq.run("prefill", self.port, n, self.args.child_timeout)
            child: Child = _bullmq.child(
                "drain",
                self.port,
                n,
                self.args.child_timeout,
                "--concurrency",
                str(system.concurrency),
                "--handler",
                handler,
            )
        elif system.kind.startswith("jq-"):
            self.produce("prefill", n)
            target = self.target if system.kind == "jq-server" else ""
            child = self.py_child(
                "jq-worker",
                "--redis-url",
                self.url,
                "--target",
                target,
                "--mode",
                "drain",
                "--count",
                str(n),
                "--concurrency",
                str(system.concurrency),
                "--handler",
                handler,
            )
        else:
            await _peers.enqueue(system.kind, self.url, n)
            child = self.py_child(
                "peer-worker",
                "--peer",
                system.kind,
                "--redis-url",
                self.url,
                "--mode",
                "drain",
                "--count",
                str(n),
                "--concurrency",
                str(system.concurrency),
                "--handler",
                handler,
            )
        result = self.result(child)
        if result["count"] < n:
            raise RuntimeError(f"{system.label}: drained {result['count']} of {n}")
        if handler == "incr" and int(self.redis.get("bench:incr") or 0) < n:
            raise RuntimeError(f"{system.label}: fewer INCRs than jobs")
        if result.get("handler_errors"):
            first = result.get("handler_error")
            raise RuntimeError(
                f"{system.label}: {result['handler_errors']} handler errors: {first}"
            )
        self.record(
            f"drain {handler}",
            system.label,
            n / result["seconds"],
            rss_mib=round(result["rss_mib"], 1),
        )

    # -- enqueue -------------------------------------------------------------------------

    def ours_and_bullmq(self, row: str, workload: str, n: int, *, bullmq: tuple[str, str]) -> None:
        """jobqueue direct, jobqueue through the server, then BullMQ: each on a flushed Redis."""
        self.redis.flushall()
        self.record(row, "jobqueue direct", self.produce(f"{workload}-direct", n)["rate"])
        self.redis.flushall()
        rate = self.produce(f"{workload}-grpc", n, self.target)["rate"]
        self.record(row, "jobqueue via server", rate)
        if not self.bullmq_missing:
            self.redis.flushall()
            command, label = bullmq
            rate = _bullmq.run(command, self.port, n, self.args.child_timeout)["rate"]
            self.record(row, label, rate)

    async def bulk(self) -> None:
        n = self.args.enqueue_count
        self.ours_and_bullmq("bulk enqueue", "bulk", n, bullmq=("add-bulk", "bullmq addBulk"))
        if "rq" in self.args.peers:
            self.redis.flushall()
            self.record("bulk enqueue", "rq enqueue_many", _peers.rq_enqueue_bulk(self.url, n))

    async def single(self) -> None:
        n = self.args.single_count
        self.ours_and_bullmq("single enqueue", "enqueue", n, bullmq=("add", "bullmq queue.add"))
        for peer in self.args.peers:
            self.redis.flushall()
            self.record("single enqueue", peer, await _peers.enqueue(peer, self.url, n))

    # -- latency ---------------------------------------------------------------------------

    async def latency(self, system: str) -> None:
        n = self.args.latency_count
        self.redis.flushall()
        if system == "bullmq":
            worker: Child = _bullmq.child(
                "latency", self.port, n, self.args.child_timeout, "--concurrency", "100"
            )
        elif system == "jobqueue direct":
            worker = self.py_child(
                "jq-worker", "--redis-url", self.url, "--mode", "latency", "--count", str(n)
            )
        else:
            worker = self.py_child(
                "peer-worker",
                "--peer",
                system,
                "--redis-url",
                self.url,
                "--mode",
                "latency",
                "--count",
                str(n),
                "--concurrency",
                str(_peers.CONCURRENCY[system][0]),
            )
        try:
            worker.wait_ready()
            await asyncio.sleep(0.5)
            if system == "bullmq":
                _bullmq.run("paced", self.port, n, self.args.child_timeout, "--rate", "100")
            elif system == "jobqueue direct":
                self.produce("paced", n)
            else:
                await _peers.enqueue(system, self.url, n, rate=100.0)
            result = self.result(worker)
        finally:
            worker.close()
        ms = [v * 1000 for v in result["latencies"]]
        self.record("latency p50 ms", system, percentile(ms, 50))
        self.record("latency p99 ms", system, percentile(ms, 99))

    # -- rounds ------------------------------------------------------------------------------

    async def round(self, number: int) -> None:
        only = self.args.only
        self.start_server()
        try:
            if "drain" in only:
                systems = self.drain_systems()
                shift = number % len(systems)
                for system in systems[shift:] + systems[:shift]:
                    for handler in self.args.handlers:
                        await self.guarded(
                            f"drain {handler}", system.label, self.drain, system, handler
                        )
            if "bulk" in only:
                await self.guarded("bulk enqueue", "all", self.bulk)
            if "single" in only:
                await self.guarded("single enqueue", "all", self.single)
        finally:
            self.stop_server()
        if "latency" in only:
            names = ["jobqueue direct", *([] if self.bullmq_missing else ["bullmq"])]
            names += [p for p in self.args.peers if p in ("huey", "taskiq")]
            for name in names[number % 2 :] + names[: number % 2]:
                await self.guarded("latency", name, self.latency, name)

    async def guarded(self, workload: str, system: str, call: Any, *args: Any) -> None:
        """One failed system costs its row, not the run."""
        try:
            await call(*args)
        except Exception as error:
            print(f"  {workload:<28} {system:<30} FAILED: {error}", flush=True)
            self.skipped[f"{workload} {system}"] = str(error)[:300]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.versus", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["drain", "bulk", "single", "latency"],
        default=["drain", "bulk", "single", "latency"],
    )
    parser.add_argument("--peers", nargs="*", choices=_peers.PEERS, default=["huey", "dramatiq"])
    parser.add_argument("--handlers", nargs="+", choices=["noop", "incr"], default=["noop", "incr"])
    parser.add_argument("--drain-count", type=int, default=20_000)
    parser.add_argument("--enqueue-count", type=int, default=20_000)
    parser.add_argument("--single-count", type=int, default=5_000)
    parser.add_argument("--latency-count", type=int, default=500)
    parser.add_argument("--child-timeout", type=float, default=180.0)
    parser.add_argument("--out", default=str(ROOT / "benchmark-results"))
    args = parser.parse_args()
    if args.quick:
        args.drain_count, args.enqueue_count, args.single_count, args.latency_count = (
            2_000,
            2_000,
            500,
            100,
        )

    print("compiling bytecode ...", flush=True)
    compile_bytecode()
    server = RedisProcess()
    server.start()
    started = time.time()
    loads = [os.getloadavg()]
    try:
        versus = Versus(args, server.url, server.port)
        if versus.bullmq_missing:
            print(f"BullMQ skipped: {versus.bullmq_missing}", flush=True)
        for number in range(args.rounds):
            print(f"== round {number + 1} (load {os.getloadavg()[0]:.1f})", flush=True)
            asyncio.run(versus.round(number))
            loads.append(os.getloadavg())
    finally:
        server.close()
    print()
    print(table(versus.rows))
    print(f"\nload average at start {loads[0]}, at end {loads[-1]}")
    for what, why in versus.skipped.items():
        print(f"skipped {what}: {why}")
    out = results_record(
        started,
        args,
        bullmq=None if versus.bullmq_missing else _bullmq.version(),
        load_average=loads,
        rows={f"{w} | {s}": v for (w, s), v in versus.rows.items()},
        details={f"{w} | {s}": v for (w, s), v in versus.details.items()},
        skipped=versus.skipped,
    )
    path = write_results(args.out, [f"versus-{stamp(started)}.json"], out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
