"""compare.py's summary: per workload, the median of the rounds on each side, the spread,
head/base, and where Redis spent its time (commands and CPU per job).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sample:
    value: float
    load: float
    stats: dict[str, Any] = field(default_factory=dict)


LOWER_IS_BETTER = ("latency",)


def summary(samples: dict[tuple[str, str], list[Sample]]) -> list[dict[str, Any]]:
    """One row per workload and HEAD variant: medians, spreads, head/base ratio."""
    rows: list[dict[str, Any]] = []
    workloads = list(dict.fromkeys(w for w, _ in samples))
    for workload in workloads:
        base = samples.get((workload, "base"), [])
        for (name, label), head in samples.items():
            if name != workload or label == "base" or not base:
                continue
            b = [s.value for s in base]
            h = [s.value for s in head]
            ratio = statistics.median(h) / statistics.median(b)
            pairs = [x.value / y.value for x, y in zip(head, base, strict=False)]
            rows.append(
                {
                    "workload": workload,
                    "head": label,
                    "base_median": statistics.median(b),
                    "base_range": [min(b), max(b)],
                    "head_median": statistics.median(h),
                    "head_range": [min(h), max(h)],
                    "ratio": round(ratio, 3),
                    "round_ratios": [round(p, 3) for p in pairs],
                    "rounds": min(len(b), len(h)),
                    "lower_is_better": workload.startswith(LOWER_IS_BETTER),
                    "base_cost": cost(base),
                    "head_cost": cost(head),
                }
            )
    return rows


def cost(samples: list[Sample]) -> dict[str, float]:
    """Median per-job costs over the rounds (Redis CPU, commands, client CPU)."""
    keys = (
        "server_cpu_us_per_job",
        "redis_cpu_us_per_job",
        "commands_per_job",
        "worker_cpu_us_per_job",
        "producer_cpu_us_per_job",
    )
    out: dict[str, float] = {}
    for key in keys:
        values = [s.stats[key] for s in samples if key in s.stats]
        if values:
            out[key] = statistics.median(values)
    return out


def cpu_ratio(base: dict[str, float], head: dict[str, float]) -> str:
    """All the CPU one job costs (client, server, Redis), head over base.

    On a machine whose load exceeds its cores, rates measure the scheduler as
    much as the code; CPU time per job is what the code decides.
    """
    keys = [k for k in base if k.endswith("cpu_us_per_job") and k in head]
    total = sum(base[k] for k in keys)
    if not keys or total <= 0:
        return ""
    return f"{sum(head[k] for k in keys) / total:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workload | head | base median (range) | head median (range) | head/base "
        "| per round | Redis µs/job base→head | cmds/job base→head | client CPU µs/job base→head "
        "| server CPU µs/job base→head | CPU/job head/base |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        bc, hc = row["base_cost"], row["head_cost"]
        client = next(
            (k for k in ("worker_cpu_us_per_job", "producer_cpu_us_per_job") if k in bc), ""
        )

        def pair(key: str, bc: dict[str, float] = bc, hc: dict[str, float] = hc) -> str:
            if key not in bc or key not in hc:
                return ""
            return f"{bc[key]:,.1f} → {hc[key]:,.1f}"

        lo, hi = row["base_range"]
        hlo, hhi = row["head_range"]
        note = " (lower is better)" if row["lower_is_better"] else ""
        lines.append(
            f"| {row['workload']} | {row['head']} "
            f"| {row['base_median']:,.1f} ({lo:,.1f} to {hi:,.1f}) "
            f"| {row['head_median']:,.1f} ({hlo:,.1f} to {hhi:,.1f}) "
            f"| **{row['ratio']:.2f}**{note} "
            f"| {', '.join(f'{p:.2f}' for p in row['round_ratios'])} "
            f"| {pair('redis_cpu_us_per_job')} | {pair('commands_per_job')} "
            f"| {pair(client) if client else ''} | {pair('server_cpu_us_per_job')} "
            f"| {cpu_ratio(bc, hc)} |"
        )
    return "\n".join(lines)
