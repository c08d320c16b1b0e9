"""What the benchmark drivers write: the machine they ran on, jobqueue's ratios to its
peers against the targets, the Markdown table, and the JSON results file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import redis

from . import _peers
from ._common import ROOT


@dataclass
class Row:
    workload: str
    system: str
    value: float
    unit: str
    detail: dict[str, Any] = field(default_factory=dict)


def machine(url: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            lines = handle.read().splitlines()
        for line in lines:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = redis.Redis.from_url(url).info("server")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "redis": info["redis_version"],
        "grpcio": metadata.version("grpcio"),
        "redis-py": metadata.version("redis"),
        "peers": {peer: _peers.versions(peer) for peer in _peers.PEERS},
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
    }


def ratios(rows: list[Row], peers: list[str]) -> list[dict[str, Any]]:
    """jobqueue against the best peer of each workload, next to the target."""

    def value(workload: str, system: str) -> float | None:
        for row in rows:
            if row.workload == workload and row.system == system:
                return row.value
        return None

    def best(workload: str, systems: list[str], *, low: bool = False) -> tuple[str, float] | None:
        found = [(s, v) for s in systems if (v := value(workload, s)) is not None]
        if not found:
            return None
        return (min if low else max)(found, key=lambda item: item[1])

    out: list[dict[str, Any]] = []

    def check(
        name: str,
        ours: float | None,
        ref: tuple[str, float] | None,
        target: float,
        *,
        low: bool = False,
    ) -> None:
        if ours is None or ref is None:
            return
        ratio = ours / ref[1]
        met = ratio <= target if low else ratio >= target
        out.append(
            {
                "check": name,
                "jobqueue": ours,
                "reference": ref[0],
                "reference_value": ref[1],
                "ratio": round(ratio, 3),
                "target": target,
                "met": met,
            }
        )

    direct = value("drain direct Redis", "jobqueue")
    check("drain direct >= 5x best peer", direct, best("drain direct Redis", peers), 5.0)
    check(
        "drain via server >= 3x best peer",
        value("drain through server", "jobqueue"),
        best("drain direct Redis", peers),
        3.0,
    )
    bulk_peers = best("enqueue bulk (1,000/call)", ["rq enqueue_many"])
    check(
        "bulk enqueue (gRPC) >= 4x best peer bulk",
        value("enqueue bulk (1,000/call)", "jobqueue gRPC EnqueueJobs"),
        bulk_peers,
        4.0,
    )
    check(
        "bulk enqueue (direct) >= 4x best peer bulk",
        value("enqueue bulk (1,000/call)", "jobqueue direct"),
        bulk_peers,
        4.0,
    )
    check(
        "single enqueue direct >= 1x best peer",
        value("enqueue direct sequential", "jobqueue"),
        best("enqueue direct sequential", peers),
        1.0,
    )
    for label in ("sequential", "20 in flight"):
        workload = f"enqueue gRPC {label}"
        check(
            f"enqueue gRPC {label} >= 0.85x floor",
            value(workload, "jobqueue"),
            best(workload, ["no-op grpc.aio floor"]),
            0.85,
        )
    for q, limit in (("p50", 1.0), ("p99", 1.5)):
        workload = f"latency enqueue->start {q}"
        ours = value(workload, "jobqueue")
        check(
            f"latency {q} <= {limit} ms", ours, ("target", limit) if ours else None, 1.0, low=True
        )
    for workload in ("drain direct Redis", "drain through server"):
        rss = next(
            (
                r.detail["peak_rss_mib"]
                for r in rows
                if r.workload == workload and r.system == "jobqueue"
            ),
            None,
        )
        check(f"worker peak RSS ({workload}) <= 40 MiB", rss, ("target", 40.0), 1.0, low=True)
    rates = [r for r in rows if r.workload == "scaling claim+complete"]
    if len(rates) == 2:
        slowdown = rates[0].value / rates[1].value
        out.append(
            {
                "check": "scaling: per-job cost at large/small backlog <= 1.3",
                "ratio": round(slowdown, 3),
                "target": 1.3,
                "met": slowdown <= 1.3,
            }
        )
    mem = [
        r
        for r in rows
        if r.workload == "scaling Redis bytes/pending job" and "listpack" not in r.system
    ]
    if mem:
        beyond = mem[0].detail["beyond_payload"]
        out.append(
            {
                "check": "Redis bytes per pending job beyond payload <= 300",
                "jobqueue": beyond,
                "target": 300,
                "met": beyond <= 300,
            }
        )
    return out


def print_table(rows: list[Row], checks: list[dict[str, Any]]) -> None:
    print("\n| workload | system | value | unit | detail |\n|---|---|---:|---|---|")
    for row in rows:
        detail = ", ".join(f"{k}={v}" for k, v in row.detail.items() if k != "latencies")
        print(f"| {row.workload} | {row.system} | {row.value:,.1f} | {row.unit} | {detail} |")
    print(
        "\n| target | jobqueue | reference | ratio | target | met |\n|---|---:|---|---:|---:|---|"
    )
    for c in checks:
        ours = c.get("jobqueue")
        ref = c.get("reference")
        ref_text = f"{ref} {c['reference_value']:,.1f}" if ref else ""
        ours_text = f"{ours:,.1f}" if ours is not None else ""
        met = "yes" if c["met"] else "**no**"
        print(
            f"| {c['check']} | {ours_text} | {ref_text} | {c.get('ratio', '')} "
            f"| {c['target']} | {met} |"
        )


def results_record(started: float, args: argparse.Namespace, **figures: Any) -> dict[str, Any]:
    """What every driver's JSON opens with: when it started, how long it ran, with what options."""
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "args": vars(args),
        **figures,
    }


def stamp(started: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))


def write_results(out_dir: str, names: Sequence[str], record: dict[str, Any]) -> str:
    """Write ``record`` as JSON under each name in ``out_dir``; return the first path."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, name) for name in names]
    for path in paths:
        with open(path, "w") as handle:
            json.dump(record, handle, indent=1)
    return paths[0]
