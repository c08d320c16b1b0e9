"""The cost of one job: what a drained job costs Redis, the worker and the server.

``uv run --group bench --with memray python -m tests.benchmarks.cost [--rounds 2]``

For a drain of N prefilled jobs by one worker process, on the direct path
(``StoreSource``), through the server (``GrpcSource``) and, for reference,
with BullMQ (one node Worker, concurrency 100), per job:

* Redis commands (``INFO commandstats`` after ``CONFIG RESETSTAT``), and which;
* Redis CPU µs (``INFO cpu`` used_cpu_sys + used_cpu_user, before and after);
* CPU µs in the worker and in the server (``getrusage`` of each process over
  the drain: the worker's own window, the server's opened and closed by SIGUSR1);
* event-loop iterations in the worker and the server (asyncio's loop: uvloop
  has no hook; a pass of its own, see ``_probes``);
* allocations in the worker and the server (memray, a pass of its own: it slows
  the process; without memray installed the row says so);
* a cProfile of the worker's (and the server's) drain, top 15 by own time.

The rate and CPU passes run on uvloop, as the benchmark's workers do, ``--rounds``
times, the three systems in a rotating order; a figure is the median of rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pstats
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from tests._bytecode import compile_bytecode
from tests._redis_server import RedisProcess, free_port

from . import _bullmq
from ._common import ROOT, Child

PATHS = ("direct", "server", "bullmq")
LABELS = {"direct": "jobqueue direct", "server": "jobqueue via server", "bullmq": "BullMQ c=100"}
IGNORED = {"info", "config|resetstat", "config", "flushall", "ping"}


@dataclass
class Pass:
    """One drain's per-job figures for one path."""

    path: str
    values: dict[str, float] = field(default_factory=dict)
    commands: dict[str, float] = field(default_factory=dict)


class Cost:
    def __init__(self, args: argparse.Namespace, server: RedisProcess) -> None:
        self.args = args
        self.url = server.url
        self.port = server.port
        self.redis = redis.Redis.from_url(self.url, socket_timeout=120, decode_responses=True)
        self.passes: dict[str, list[Pass]] = {}
        self.tmp = tempfile.mkdtemp(prefix="jq-cost-")

    # -- children -------------------------------------------------------------------------

    def child(self, *args: str, uvloop: bool = True) -> Child:
        extra = ["--uvloop"] if uvloop else []
        child = Child([*args, *extra, "--timeout", str(self.args.child_timeout)])
        child.start()
        return child

    def prefill(self, path: str, n: int) -> None:
        self.redis.flushall()
        if path == "bullmq":
            _bullmq.run("prefill", self.port, n, self.args.child_timeout)
            return
        child = self.child(
            "jq-producer", "--workload", "prefill", "--redis-url", self.url, "--count", str(n)
        )
        try:
            child.result(self.args.child_timeout)
        finally:
            child.close()

    def server(self, *, uvloop: bool, allocs: str = "", profile: str = "") -> tuple[Child, str]:
        port = free_port()
        args = ["jq-server", "--redis-url", self.url, "--port", str(port), "--probe"]
        args += ["--allocs-path", allocs] if allocs else []
        args += ["--profile-path", profile] if profile else []
        server = self.child(*args, uvloop=uvloop)
        server.wait_ready()
        return server, f"127.0.0.1:{port}"

    def toggle(self, server: Child) -> dict[str, Any]:
        """Open or close the server's cost window; returns its counts when closing."""
        assert server.process is not None
        server.process.send_signal(signal.SIGUSR1)
        line = server.read_line(self.args.child_timeout)
        if not line.startswith("STATS "):
            raise RuntimeError(f"server answered {line!r}")
        stats: dict[str, Any] = json.loads(line[len("STATS ") :])
        return stats

    # -- one drain ------------------------------------------------------------------------

    def drain(
        self, path: str, n: int, *, uvloop: bool = True, allocs: bool = False, profile: bool = False
    ) -> Pass:
        """Drain ``n`` jobs on ``path``, with Redis's statistics around it."""
        self.prefill(path, n)
        server: Child | None = None
        target = ""
        names = {k: os.path.join(self.tmp, f"{path}-{k}") for k in ("w-allocs", "w-prof", "s")}
        if path == "server":
            server, target = self.server(
                uvloop=uvloop,
                allocs=names["s"] + ".bin" if allocs else "",
                profile=names["s"] + ".prof" if profile else "",
            )
        try:
            self.redis.config_resetstat()
            before = self.redis_cpu()
            if server is not None:
                self.toggle(server)
            result = self.run_worker(path, n, target, uvloop, allocs, profile, names)
            server_stats = self.toggle(server) if server is not None else {}
            used = self.redis_cpu() - before
            commands = self.commands()
        finally:
            if server is not None:
                server.close()
        if result["count"] < n:
            raise RuntimeError(f"{path}: drained {result['count']} of {n}")
        if result.get("handler_errors"):
            first = result.get("handler_error")
            raise RuntimeError(f"{path}: {result['handler_errors']} handler errors: {first}")
        out = Pass(path)
        out.commands = {name: calls / n for name, calls in commands.items()}
        values = out.values
        values["jobs/s"] = n / result["seconds"]
        values["Redis commands"] = sum(commands.values()) / n
        values["Redis CPU µs"] = used * 1e6 / n
        probe = result.get("probe") or {}
        worker_cpu = probe.get("cpu_s", result.get("cpu_s", 0.0))
        values["worker CPU µs"] = worker_cpu * 1e6 / n
        if probe.get("loop_iterations") is not None:
            values["worker loop iterations"] = probe["loop_iterations"] / n
        if "allocations" in probe:
            values["worker allocations"] = probe["allocations"] / n
        if server_stats:
            values["server CPU µs"] = server_stats["cpu_s"] * 1e6 / n
            if server_stats.get("loop_iterations") is not None:
                values["server loop iterations"] = server_stats["loop_iterations"] / n
            if "allocations" in server_stats:
                values["server allocations"] = server_stats["allocations"] / n
        values["worker peak RSS MiB"] = result["rss_mib"]
        if "rss_file_mib" in result:
            values["worker RSS in files MiB"] = result["rss_file_mib"]
            values["worker RSS anonymous MiB"] = result["rss_anon_mib"]
        return out

    def run_worker(
        self,
        path: str,
        n: int,
        target: str,
        uvloop: bool,
        allocs: bool,
        profile: bool,
        names: dict[str, str],
    ) -> dict[str, Any]:
        if path == "bullmq":
            child: Child = _bullmq.child(
                "drain",
                self.port,
                n,
                self.args.child_timeout,
                "--concurrency",
                "100",
                "--handler",
                self.args.handler,
            )
        else:
            args = ["jq-worker", "--redis-url", self.url, "--target", target, "--probe"]
            args += ["--count", str(n), "--concurrency", str(self.args.concurrency)]
            args += ["--handler", self.args.handler]
            args += ["--allocs-path", names["w-allocs"] + ".bin"] if allocs else []
            args += ["--profile-path", names["w-prof"] + ".prof"] if profile else []
            child = self.child(*args, uvloop=uvloop)
        try:
            return child.result(self.args.child_timeout + 60)
        except Exception as error:
            raise RuntimeError(f"{path} worker: {error}\n{child.stderr_tail()}") from error
        finally:
            child.close()

    def redis_cpu(self) -> float:
        cpu: dict[str, Any] = self.redis.info("cpu")
        return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])

    def commands(self) -> dict[str, int]:
        stats: dict[str, Any] = self.redis.info("commandstats")
        out = {}
        for name, stat in stats.items():
            command = name.removeprefix("cmdstat_")
            if command not in IGNORED:
                out[command] = int(stat["calls"])
        return out

    # -- the passes --------------------------------------------------------------------------

    def run(self) -> None:
        n = self.args.count
        paths = [p for p in PATHS if p != "bullmq" or not _bullmq.unavailable()]
        wanted = self.args.passes
        for number in range(self.args.rounds if "rate" in wanted else 0):
            order = paths[number % len(paths) :] + paths[: number % len(paths)]
            print(f"== round {number + 1}: uvloop, {' then '.join(order)}", flush=True)
            for path in order:
                self.attempt("rate", path, n)
        if "asyncio" in wanted:
            print("== asyncio's loop: loop iterations", flush=True)
            for path in ("direct", "server"):
                self.attempt("asyncio", path, n, uvloop=False)
        has_memray = importlib.util.find_spec("memray") is not None
        if "allocs" in wanted and not has_memray:
            print("== allocations skipped: memray is not installed (uv run --with memray)")
        elif "allocs" in wanted:
            print(f"== allocations (memray), {self.args.alloc_count} jobs", flush=True)
            for path in ("direct", "server"):
                self.attempt("allocs", path, self.args.alloc_count, allocs=True)
        if "profile" in wanted:
            print("== profiles (cProfile)", flush=True)
            for path in ("direct", "server"):
                self.attempt("profile", path, n, profile=True)

    def attempt(self, kind: str, path: str, n: int, **options: bool) -> None:
        """One pass of one path; a failure costs its figures, not the run's."""
        try:
            self.keep(kind, self.drain(path, n, **options))
        except Exception as error:
            print(f"  {kind:<8} {LABELS[path]:<22} FAILED: {error}", flush=True)

    def keep(self, kind: str, result: Pass) -> None:
        self.passes.setdefault(kind, []).append(result)
        shown = ", ".join(f"{k}={v:,.1f}" for k, v in result.values.items())
        print(f"  {kind:<8} {LABELS[result.path]:<22} {shown}", flush=True)

    # -- reporting ----------------------------------------------------------------------------

    def figure(self, kind: str, path: str, key: str) -> list[float]:
        return [
            p.values[key] for p in self.passes.get(kind, []) if p.path == path and key in p.values
        ]

    def table(self) -> str:
        done = [x.path for kind in self.passes.values() for x in kind]
        paths = [p for p in PATHS if p in done]
        rows: list[tuple[str, str, str]] = [
            ("jobs/s (uvloop)", "rate", "jobs/s"),
            ("Redis commands", "rate", "Redis commands"),
            ("Redis CPU µs", "rate", "Redis CPU µs"),
            ("worker CPU µs (uvloop)", "rate", "worker CPU µs"),
            ("server CPU µs (uvloop)", "rate", "server CPU µs"),
            ("worker CPU µs (asyncio loop)", "asyncio", "worker CPU µs"),
            ("server CPU µs (asyncio loop)", "asyncio", "server CPU µs"),
            ("worker loop iterations (asyncio loop)", "asyncio", "worker loop iterations"),
            ("server loop iterations (asyncio loop)", "asyncio", "server loop iterations"),
            ("worker allocations (memray)", "allocs", "worker allocations"),
            ("server allocations (memray)", "allocs", "server allocations"),
            ("worker peak RSS MiB", "rate", "worker peak RSS MiB"),
            (
                "worker RSS in files (code) MiB, at the drain's end",
                "rate",
                "worker RSS in files MiB",
            ),
            (
                "worker RSS anonymous (data) MiB, at the drain's end",
                "rate",
                "worker RSS anonymous MiB",
            ),
        ]
        head = "| per job | " + " | ".join(LABELS[p] for p in paths) + " |"
        lines = [head, "|---|" + "---:|" * len(paths)]
        for label, kind, key in rows:
            cells = []
            for path in paths:
                values = self.figure(kind, path, key)
                cells.append(cell(values))
            if any(cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("Redis commands per job (median of the uvloop rounds):")
        lines.append("")
        lines.append("| command | " + " | ".join(LABELS[p] for p in paths) + " |")
        lines.append("|---|" + "---:|" * len(paths))
        names = sorted({c for x in self.passes.get("rate", []) for c in x.commands})
        for name in names:
            cells = []
            for path in paths:
                values = [x.commands.get(name, 0.0) for x in self.passes["rate"] if x.path == path]
                cells.append(f"{statistics.median(values):.2f}" if values else "")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def profiles(self) -> str:
        out = []
        for name, title in (
            ("direct-w-prof", "worker, direct"),
            ("server-w-prof", "worker, via server"),
            ("server-s", "server"),
        ):
            path = os.path.join(self.tmp, name + ".prof")
            if not os.path.exists(path):
                continue
            out.append(f"\n### {title}: top 15 by own time (cProfile, {self.args.count:,} jobs)\n")
            out.append("| own s | cum s | calls | function |\n|---:|---:|---:|---|")
            stats: Any = pstats.Stats(path)
            entries = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)
            for (filename, line, function), (_, calls, own, cum, _) in entries[:15]:
                where = short(filename)
                out.append(f"| {own:.3f} | {cum:.3f} | {calls:,} | `{where}:{line} {function}` |")
        return "\n".join(out)


def cell(values: list[float]) -> str:
    if not values:
        return ""
    middle = statistics.median(values)
    text = f"{middle:,.1f}" if middle < 1_000 else f"{middle:,.0f}"
    if len(values) > 1:
        text += f" ({' / '.join(f'{v:,.1f}' if v < 1_000 else f'{v:,.0f}' for v in values)})"
    return text


def short(filename: str) -> str:
    """A profile entry's file, from the package down (site-packages and tree roots cut)."""
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.cost", description=__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="jobs per drain")
    parser.add_argument("--alloc-count", type=int, default=5_000, help="jobs per memray drain")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=100, help="jobqueue worker slots")
    parser.add_argument(
        "--handler", choices=["noop", "incr"], default="noop", help="as versus.py's variants"
    )
    parser.add_argument(
        "--passes",
        nargs="+",
        choices=["rate", "asyncio", "allocs", "profile"],
        default=["rate", "asyncio", "allocs", "profile"],
    )
    parser.add_argument("--child-timeout", type=float, default=180.0)
    parser.add_argument("--out", default=str(ROOT / "benchmark-results"))
    args = parser.parse_args()

    print("compiling bytecode ...", flush=True)
    compile_bytecode()
    server = RedisProcess()
    server.start()
    started = time.time()
    try:
        cost = Cost(args, server)
        cost.run()
    finally:
        server.close()
    table, profiles = cost.table(), cost.profiles()
    print()
    print(table)
    print(profiles)
    os.makedirs(args.out, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    path = os.path.join(args.out, f"cost-{stamp}.json")
    with open(path, "w") as handle:
        json.dump(
            {
                "started": stamp,
                "args": vars(args),
                "passes": {k: [vars(p) for p in v] for k, v in cost.passes.items()},
                "table": table,
                "profiles": profiles,
            },
            handle,
            indent=1,
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
