"""versus.py's table: every round's figure per system, and its ratio to BullMQ in that round."""

from __future__ import annotations


def reference(workload: str) -> str:
    if workload.startswith("drain"):
        return "bullmq c=100"
    return {"bulk enqueue": "bullmq addBulk", "single enqueue": "bullmq queue.add"}.get(
        workload, "bullmq"
    )


def table(rows: dict[tuple[str, str], list[float]]) -> str:
    lines = [
        "| workload | system | per round | vs BullMQ, per round |",
        "|---|---|---:|---:|",
    ]
    for (workload, system), values in rows.items():
        ref = rows.get((workload, reference(workload)), [])
        ratios = ", ".join(f"{v / r:.2f}" for v, r in zip(values, ref, strict=False) if r)
        fmt = "{:,.2f}" if "ms" in workload else "{:,.0f}"
        lines.append(
            f"| {workload} | {system} | {' / '.join(fmt.format(v) for v in values)} | {ratios} |"
        )
    return "\n".join(lines)
