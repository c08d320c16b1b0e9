"""Before and after in one run: jobqueue's own workloads on a baseline tree and on HEAD.

``uv run --group bench python -m tests.benchmarks.compare --baseline-tree DIR [--head-tree DIR]``

A tree is a checkout's ``packages/`` and ``services/`` (``git archive 99d3cdf packages
services | tar -x -C /tmp/jq-base`` is enough). Every measured process — producers,
servers, workers — runs this repository's harness (``_proc``, ``_jobqueue``) with
PYTHONPATH on one tree's ``*/src`` folders, which come before the virtualenv's
editable installs: the same driver, the same Redis, the same machine minute, only
the library differs. The third-party packages are the virtualenv's for both.

Why alternate: the machine is shared, and a neighbour's test run can take a core
for a minute. Each round runs every workload on both sides back to back, base
first in even rounds and HEAD first in odd ones (the server variants rotate), so
a burst of load lands on both sides alike; a row's figure is the median of its
rounds, its spread the lowest and highest, and its ratio head/base.

Each measurement also resets Redis's statistics first and reads them after:
commands per job, Redis CPU µs per job and µs per call of each command (scripts
included) say where a slower row spends its time. Every child has a timeout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests._bytecode import compile_bytecode
from tests._redis_server import RedisProcess, free_port
from tests.server._process import wait_for_health

from ._common import ROOT, Child, percentile
from ._compare_table import Sample, summary, table
from ._report import results_record, stamp, write_results


@dataclass(frozen=True)
class Counts:
    drain: int
    bulk: int
    single_direct: int
    single_grpc: int
    latency: int


FULL = Counts(drain=20_000, bulk=20_000, single_direct=5_000, single_grpc=2_000, latency=500)
QUICK = Counts(drain=3_000, bulk=5_000, single_direct=1_000, single_grpc=500, latency=100)


@dataclass(frozen=True)
class Side:
    """One tree, and for server rows the wire its server speaks."""

    name: str
    tree: Path
    wire: str = "grpcio"

    @property
    def label(self) -> str:
        return self.name if self.name == "base" else f"{self.name} {self.wire}"

    def env(self) -> dict[str, str]:
        paths = sorted(self.tree.glob("packages/*/src")) + sorted(self.tree.glob("services/*/src"))
        if not paths:
            raise SystemExit(f"{self.tree} has no packages/*/src: not a jobqueue tree")
        return {"PYTHONPATH": os.pathsep.join(str(p) for p in paths), "JOBQUEUE_WIRE": self.wire}


class Server:
    """``python -m jobqueue_server`` of one tree, on Redis, with one wire."""

    def __init__(self, side: Side, redis_url: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            **side.env(),
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
        try:
            wait_for_health(self.port, 1, timeout_s=30)
        except BaseException:
            self.stop()
            raise

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_s(self) -> float:
        """The server's CPU time so far (user + system), from /proc: its cost per job."""
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


class Compare:
    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url
        self.counts = QUICK if args.quick else FULL
        self.redis = redis.Redis.from_url(url, socket_timeout=120, decode_responses=True)
        self.samples: dict[tuple[str, str], list[Sample]] = {}
        self.server: Server | None = None

    # -- children ----------------------------------------------------------------

    def child(self, side: Side, *args: str) -> Child:
        child = Child([*args, "--uvloop", "--timeout", str(self.args.child_timeout)], side.env())
        child.start()
        return child

    def produce(
        self, side: Side, workload: str, count: int, *, target: str = "", in_flight: int = 1
    ) -> dict[str, Any]:
        child = self.child(
            side,
            "jq-producer",
            "--workload",
            workload,
            "--redis-url",
            self.url,
            "--target",
            target,
            "--count",
            str(count),
            "--in-flight",
            str(in_flight),
        )
        try:
            return child.result(self.args.child_timeout)
        except Exception as error:
            raise RuntimeError(
                f"{side.label} {workload}: {error}\n{child.stderr_tail()}"
            ) from error
        finally:
            child.close()

    def worker(self, side: Side, mode: str, count: int, target: str = "") -> Child:
        return self.child(
            side,
            "jq-worker",
            "--redis-url",
            self.url,
            "--target",
            target,
            "--mode",
            mode,
            "--count",
            str(count),
            "--concurrency",
            str(self.args.concurrency),
        )

    # -- Redis statistics ----------------------------------------------------------

    def reset_stats(self) -> dict[str, float]:
        self.redis.config_resetstat()
        cpu: dict[str, Any] = self.redis.info("cpu")
        server = self.server.cpu_s() if self.server else 0.0
        return {"cpu": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), "server": server}

    def read_stats(self, before: dict[str, float], jobs: int) -> dict[str, Any]:
        """Redis's side of one measurement, per job: CPU, commands, and each command's cost."""
        cpu: dict[str, Any] = self.redis.info("cpu")
        used = float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]) - before["cpu"]
        commands: dict[str, Any] = self.redis.info("commandstats")
        table = {
            name.removeprefix("cmdstat_"): {
                "calls": int(stat["calls"]),
                "usec_per_call": float(stat["usec_per_call"]),
            }
            for name, stat in commands.items()
            if name.removeprefix("cmdstat_") not in {"info", "config|resetstat", "config"}
        }
        jobs = max(jobs, 1)
        server = {}
        if self.server is not None:
            spent = self.server.cpu_s() - before["server"]
            server = {"server_cpu_us_per_job": round(spent * 1e6 / jobs, 1)}
        return {
            **server,
            "redis_cpu_us_per_job": round(used * 1e6 / jobs, 2),
            "commands_per_job": round(sum(c["calls"] for c in table.values()) / jobs, 3),
            "commands": table,
        }

    def flush(self) -> None:
        self.redis.flushall()

    def record(self, workload: str, side: Side, value: float, stats: dict[str, Any]) -> None:
        load = os.getloadavg()[0]
        self.samples.setdefault((workload, side.label), []).append(Sample(value, load, stats))
        extra = " ".join(
            f"{k}={v}" for k, v in stats.items() if k not in {"commands", "latencies_ms"}
        )
        print(f"  {workload:<36} {side.label:<13} {value:>12,.2f}  load={load:.2f} {extra}")

    # -- workloads -------------------------------------------------------------------

    def drain(self, workload: str, side: Side, target: str = "") -> None:
        n = self.counts.drain
        self.flush()
        self.produce(side, "prefill", n)
        before = self.reset_stats()
        worker = self.worker(side, "drain", n, target)
        try:
            result = worker.result(self.args.child_timeout + 30)
        finally:
            worker.close()
        if result["count"] < n:
            raise RuntimeError(f"{side.label} {workload}: drained {result['count']} of {n}")
        stats = self.read_stats(before, n)
        stats["worker_cpu_us_per_job"] = round(result["cpu_s"] * 1e6 / n, 1)
        stats["peak_rss_mib"] = round(result["rss_mib"], 1)
        self.record(workload, side, n / result["seconds"], stats)

    def producer(
        self, workload: str, side: Side, kind: str, n: int, target: str = "", in_flight: int = 1
    ) -> None:
        self.flush()
        before = self.reset_stats()
        result = self.produce(side, kind, n, target=target, in_flight=in_flight)
        stats = self.read_stats(before, n)
        stats["producer_cpu_us_per_job"] = round(result["cpu_s"] * 1e6 / n, 1)
        self.record(workload, side, result["rate"], stats)

    def latency(self, side: Side) -> None:
        n = self.counts.latency
        self.flush()
        worker = self.worker(side, "latency", n)
        try:
            worker.wait_ready()
            time.sleep(0.5)
            self.produce(side, "paced", n)
            result = worker.result(self.args.child_timeout)
        finally:
            worker.close()
        ms = [v * 1000 for v in result["latencies"]]
        self.record("latency p50 ms (direct)", side, percentile(ms, 50), {"count": len(ms)})
        self.record("latency p99 ms (direct)", side, percentile(ms, 99), {"count": len(ms)})

    def direct_round(self, sides: list[Side]) -> None:
        c = self.counts
        only = self.args.only
        for side in sides if "drain" in only else []:
            self.drain("drain direct (Redis)", side)
        for side in sides if "enqueue" in only else []:
            self.producer("bulk enqueue direct (1,000/call)", side, "bulk-direct", c.bulk)
        for side in sides if "enqueue" in only else []:
            self.producer("single enqueue direct", side, "enqueue-direct", c.single_direct)
        for side in sides if "latency" in only else []:
            self.latency(side)

    def server_round(self, variants: list[Side]) -> None:
        c = self.counts
        only = self.args.only
        if "drain" not in only and "enqueue" not in only:
            return
        for side in variants:
            server = self.server = Server(side, self.url)
            try:
                if "enqueue" in only:
                    self.producer(
                        "bulk enqueue gRPC SDK (1,000/call)",
                        side,
                        "bulk-grpc",
                        c.bulk,
                        server.target,
                    )
                    self.producer(
                        "single enqueue gRPC SDK",
                        side,
                        "enqueue-grpc",
                        c.single_grpc,
                        server.target,
                    )
                if "drain" in only:
                    self.drain("drain through server", side, server.target)
            finally:
                self.server = None
                server.stop()

    def run(self) -> None:
        base = Side("base", Path(self.args.baseline_tree).resolve())
        head_tree = Path(self.args.head_tree).resolve()
        head = Side("head", head_tree, "grpcio")
        servers = [base, head, Side("head", head_tree, "http")]
        for number in range(self.args.rounds):
            sides = [base, head] if number % 2 == 0 else [head, base]
            shift = number % len(servers)
            print(f"== round {number + 1}: {' then '.join(s.name for s in sides)}", flush=True)
            self.direct_round(sides)
            self.server_round(servers[shift:] + servers[:shift])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.compare", description=__doc__)
    parser.add_argument("--baseline-tree", required=True, help="a tree with packages/*/src")
    parser.add_argument("--head-tree", default=str(ROOT), help="default: this working tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["drain", "enqueue", "latency"],
        default=["drain", "enqueue", "latency"],
    )
    parser.add_argument("--concurrency", type=int, default=500, help="worker slots (as run.py)")
    parser.add_argument("--child-timeout", type=float, default=120.0)
    parser.add_argument("--out", default=str(ROOT / "benchmark-results"))
    args = parser.parse_args()

    print("compiling bytecode ...", flush=True)
    compile_bytecode()
    for tree in (args.baseline_tree, args.head_tree):
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", f"{tree}/packages", f"{tree}/services"],
            env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            stdout=subprocess.DEVNULL,
            check=False,
            timeout=300,
        )
    server = RedisProcess()
    server.start()
    started = time.time()
    loads = [os.getloadavg()]
    try:
        compare = Compare(args, server.url)
        compare.run()
    finally:
        loads.append(os.getloadavg())
        server.close()
    rows = summary(compare.samples)
    print()
    print(table(rows))
    print(f"\nload average (1, 5, 15 min) at start {loads[0]}, at end {loads[-1]}")
    out = results_record(
        started,
        args,
        nproc=os.cpu_count(),
        load_average=loads,
        rows=rows,
        samples={f"{w} | {s}": [vars(x) for x in v] for (w, s), v in compare.samples.items()},
    )
    path = write_results(args.out, [f"compare-{stamp(started)}.json"], out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
