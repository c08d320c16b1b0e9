"""Instructions a drained job costs the worker, counted by callgrind, tree against tree.

``uv run --group bench python -m tests.benchmarks.instructions --tree DIR --tree DIR``

A tree is a checkout's ``packages/`` and ``services/`` (``git archive <rev>
packages services | tar -x -C DIR``), put first on PYTHONPATH as compare.py
does. Timed figures on this shared 2-core machine swing 2x within minutes;
valgrind's callgrind counts the instructions a process executes, which the
machine's speed does not change. Each tree's worker (noop handler, concurrency
100, uvloop) drains ``--counts`` N1 then N2 prefilled jobs under callgrind, and
its row is ``(Ir(N2) - Ir(N1)) / (N2 - N1)``: start and stop cancel out. On
the ``server`` path the tree's own server serves it, outside callgrind (under
valgrind it served too slowly for the worker's calls to finish).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

from tests._redis_process import RedisProcess, free_port

from ._common import Child

TIMEOUT_S = 900.0


def tree_env(tree: Path) -> dict[str, str]:
    paths = sorted(tree.glob("packages/*/src")) + sorted(tree.glob("services/*/src"))
    if not paths:
        raise SystemExit(f"{tree} has no packages/*/src: not a jobqueue tree")
    return {"PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


def instructions(out: Path) -> int:
    """The total instructions (Ir) of a callgrind output file."""
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"{out}: no totals")


def drain(url: str, tree: Path, path: str, n: int, out: Path) -> int:
    """Prefill ``n`` jobs, drain them with the tree's worker under callgrind; its Ir."""
    env = tree_env(tree)
    redis.Redis.from_url(url).flushall()
    producer = Child(
        ["jq-producer", "--workload", "prefill", "--redis-url", url, "--count", str(n)], env
    )
    producer.start()
    producer.result(TIMEOUT_S)
    server: Child | None = None
    target = ""
    if path == "server":
        port = free_port()
        server = Child(["jq-server", "--redis-url", url, "--port", str(port), "--uvloop"], env)
        server.start()
        server.wait_ready()
        target = f"127.0.0.1:{port}"
    try:
        worker = ["jq-worker", "--redis-url", url, "--target", target, "--count", str(n)]
        worker += ["--concurrency", "100", "--uvloop", "--timeout", str(TIMEOUT_S)]
        callgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        subprocess.run(
            [*callgrind, sys.executable, "-m", "tests.benchmarks._proc", *worker],
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=TIMEOUT_S,
        )
    finally:
        if server is not None:
            server.stop()
    return instructions(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.instructions", description=__doc__
    )
    parser.add_argument("--tree", action="append", required=True, help="repeat: each tree")
    parser.add_argument("--paths", nargs="+", choices=["direct", "server"], default=["direct"])
    parser.add_argument("--counts", nargs=2, type=int, default=[500, 2500], metavar="N")
    args = parser.parse_args()
    n1, n2 = sorted(args.counts)
    server = RedisProcess()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print("| path | tree | worker instructions per job |\n|---|---|---:|")
            for path in args.paths:
                for tree in args.tree:
                    low = drain(server.url, Path(tree), path, n1, Path(tmp) / "low.out")
                    high = drain(server.url, Path(tree), path, n2, Path(tmp) / "high.out")
                    print(f"| {path} | {tree} | {(high - low) / (n2 - n1):,.0f} |", flush=True)
    finally:
        server.close()


if __name__ == "__main__":
    main()
