"""Where a worker's resident memory goes before it runs a job: peak RSS after each import.

``uv run python -m tests.benchmarks.rss``

Issue 17 asks for a worker of at most 40 MiB on both paths. Each row is a
fresh interpreter that imports one more stage than the row above and reports
its peak resident set (``VmHWM``), so a row's difference is what its stage
adds: the interpreter, asyncio (which loads ``ssl`` and OpenSSL), the worker
SDK, then the path's transport (the Redis store, or grpcio with the protobuf
messages) and uvloop. The last row of each path is what ``cost.py``'s worker
holds before its first job; its peak adds the jobs in flight.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

STAGES: dict[str, list[tuple[str, str]]] = {
    "direct": [
        ("interpreter", ""),
        ("asyncio", "import asyncio"),
        ("jobqueue.worker", "import jobqueue.worker"),
        ("jobqueue.redis", "import jobqueue.redis"),
        ("uvloop", "import uvloop"),
    ],
    "server": [
        ("interpreter", ""),
        ("asyncio", "import asyncio"),
        ("jobqueue.worker", "import jobqueue.worker"),
        ("grpc", "import grpc"),
        ("protobuf messages", "import mpataki.jobqueue.v1.worker_pb2_grpc"),
        ("GrpcSource", "from jobqueue.worker import GrpcSource"),
        ("uvloop", "import uvloop"),
    ],
}

_REPORT = """
with open('/proc/self/status') as status:
    for line in status:
        if line.startswith('VmHWM:'):
            print(int(line.split()[1]) / 1024)
"""


def peak_after(statements: list[str]) -> float:
    """The peak RSS (MiB) of a fresh interpreter that ran ``statements``."""
    source = "\n".join([*statements, _REPORT])
    out = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def measure(path: str, rounds: int) -> list[tuple[str, float]]:
    """Each stage's median peak over ``rounds`` fresh interpreters."""
    rows = []
    statements: list[str] = []
    for name, statement in STAGES[path]:
        if statement:
            statements.append(statement)
        peaks = sorted(peak_after(statements) for _ in range(rounds))
        rows.append((name, peaks[len(peaks) // 2]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.rss", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    results = {path: measure(path, args.rounds) for path in STAGES}
    if args.json:
        print(json.dumps(results))
        return
    for path, rows in results.items():
        print(f"\n| {path}: after | peak RSS MiB | added |\n|---|---:|---:|")
        before = 0.0
        for name, peak in rows:
            print(f"| {name} | {peak:.1f} | {peak - before:+.1f} |")
            before = peak


if __name__ == "__main__":
    main()
