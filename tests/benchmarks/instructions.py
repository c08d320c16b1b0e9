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
valgrind it served too slowly for the worker's calls to finish). The
``servicer`` path counts the server's side instead, without its transport: a
process calls the tree's ``WorkerServicer.SettleJobs`` (each settle carrying
the next claim, 50 jobs a call, as a worker's lane sends it) on a
``RedisJobStore`` until the queue is empty; building the requests is counted too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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


async def settle_in_process(url: str, count: int) -> None:
    """The server's part of a drain, in this process: what ``--paths servicer`` counts."""
    from jobqueue.domain import LeaseService
    from jobqueue.grpc import WorkerServicer
    from jobqueue.redis import RedisJobStore, RedisStoreSettings
    from mpataki.jobqueue.v1 import worker_pb2 as pb

    class Context:  # a caller with no deadline that never leaves
        def time_remaining(self) -> None:
            return None

        def cancelled(self) -> bool:
            return False

    store = RedisJobStore(RedisStoreSettings(url=url))
    servicer = WorkerServicer(LeaseService(store))
    claim = pb.ClaimJobsRequest(types=["bench"], max_jobs=50, lease_ms=60_000)
    context: Any = Context()
    leases = list((await servicer.ClaimJobs(claim, context)).leases)
    settled = 0
    while leases:
        request = pb.SettleJobsRequest()
        for lease in leases:
            request.outcomes.add(
                job_id=lease.job.id, token=lease.token, kind=pb.OUTCOME_KIND_COMPLETE
            )
        request.claim.CopyFrom(claim)
        response = await servicer.SettleJobs(request, context)
        settled += len(leases)
        leases = list(pb.SettleJobsResponse.FromString(response.SerializeToString()).leases)
    await store.close()
    if settled != count:
        raise SystemExit(f"settled {settled} jobs of {count}")


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
        if path == "servicer":
            counted = ["-m", "tests.benchmarks.instructions", "--servicer-of", url, str(n)]
        else:
            worker = ["jq-worker", "--redis-url", url, "--target", target, "--count", str(n)]
            worker += ["--concurrency", "100", "--uvloop", "--timeout", str(TIMEOUT_S)]
            counted = ["-m", "tests.benchmarks._proc", *worker]
        callgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        subprocess.run(
            [*callgrind, sys.executable, *counted],
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
    parser.add_argument("--tree", action="append", default=[], help="repeat: each tree")
    parser.add_argument(
        "--paths", nargs="+", choices=["direct", "server", "servicer"], default=["direct"]
    )
    parser.add_argument("--counts", nargs=2, type=int, default=[500, 2500], metavar="N")
    parser.add_argument("--servicer-of", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.servicer_of:  # the counted child of --paths servicer
        import uvloop

        uvloop.run(settle_in_process(args.servicer_of[0], int(args.servicer_of[1])))
        return
    if not args.tree:
        parser.error("name at least one --tree")
    n1, n2 = sorted(args.counts)
    server = RedisProcess()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print("| path | tree | instructions per job (worker; servicer: server) |")
            print("|---|---|---:|")
            for path in args.paths:
                for tree in args.tree:
                    low = drain(server.url, Path(tree), path, n1, Path(tmp) / "low.out")
                    high = drain(server.url, Path(tree), path, n2, Path(tmp) / "high.out")
                    print(f"| {path} | {tree} | {(high - low) / (n2 - n1):,.0f} |", flush=True)
    finally:
        server.close()


if __name__ == "__main__":
    main()
