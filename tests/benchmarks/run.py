"""The benchmark driver: ``uv run --group bench python -m tests.benchmarks [--quick] [--only ...]``.

Starts its own redis-server (loopback, free port, no persistence), its own
jobqueue server, a no-op gRPC server and one worker process per drain, runs
each workload for jobqueue and its peers, prints a table and writes JSON to
``benchmark-results/``. Every loop is bounded in count and each child in time.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis

from tests._bytecode import compile_bytecode
from tests._redis_process import RedisProcess, free_port

from . import _jobqueue, _peers
from ._common import ROOT, Child, percentile
from ._report import Row, machine, print_table, ratios, results_record, stamp, write_results

WORKLOADS = ("enqueue", "drain", "latency", "scaling")


@dataclass
class Counts:
    enqueue: int
    drain: int
    latency: int
    pending_small: int
    pending_large: int
    scaling_jobs: int


FULL = Counts(20_000, 20_000, 500, 1_000, 1_000_000, 20_000)


QUICK = Counts(2_000, 2_000, 100, 1_000, 20_000, 2_000)


class Bench:
    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url
        self.counts = QUICK if args.quick else FULL
        self.rows: list[Row] = []
        self.errors: list[dict[str, str]] = []
        # FLUSHALL of a million-job backlog takes longer than a command usually may.
        self.redis = redis.Redis.from_url(url, socket_timeout=600)
        self.peers = [p for p in _peers.PEERS if p in args.peers]

    def add(self, workload: str, system: str, value: float, unit: str, **detail: Any) -> None:
        row = Row(workload, system, value, unit, detail)
        self.rows.append(row)
        extra = " ".join(f"{k}={v}" for k, v in detail.items() if k != "latencies")
        print(f"  {workload:<34} {system:<28} {value:>12,.1f} {unit:<8} {extra}", flush=True)

    def failed(self, workload: str, system: str, error: Exception) -> None:
        print(f"  {workload:<34} {system:<28} FAILED: {error}", flush=True)
        self.errors.append({"workload": workload, "system": system, "error": str(error)})

    def fresh(self) -> None:
        self.redis.flushall()

    # -- children ----------------------------------------------------------------

    def child(self, *args: str) -> Child:
        extra = ["--uvloop"] if self.args.uvloop else []
        child = Child([*args, *extra])
        child.start()
        return child

    def jq_server(self) -> tuple[Child, str]:
        """A jobqueue server on a free port; a port taken in between gets another try."""
        for attempt in range(3):
            port = free_port()
            server = self.child("jq-server", "--redis-url", self.url, "--port", str(port))
            try:
                server.wait_ready()
            except RuntimeError:
                server.stop()
                if attempt == 2:
                    raise
                continue
            return server, f"127.0.0.1:{port}"
        raise AssertionError("unreachable")

    def worker(self, mode: str, count: int, *, target: str = "", peer: str = "") -> Child:
        if peer:
            concurrency = _peers.CONCURRENCY[peer][0]
            args = ["peer-worker", "--peer", peer]
        else:
            concurrency = self.args.concurrency
            args = ["jq-worker", "--target", target]
        return self.child(
            *args,
            "--redis-url",
            self.url,
            "--mode",
            mode,
            "--count",
            str(count),
            "--concurrency",
            str(concurrency),
            "--timeout",
            str(self.args.child_timeout),
        )

    # -- workloads -----------------------------------------------------------------

    async def enqueue(self) -> None:
        n = self.counts.enqueue
        noop_port = free_port()
        noop = self.child("noop-server", "--port", str(noop_port))
        noop.wait_ready()
        server, jq_target = self.jq_server()
        try:
            noop_target = f"127.0.0.1:{noop_port}"
            for in_flight in (1, 20):
                # Alternate floor and server, best of two: the machine is noisy.
                floor, ours = 0.0, 0.0
                for _ in range(2):
                    floor = max(floor, await _jobqueue.noop_floor(noop_target, n, in_flight))
                    self.fresh()
                    ours = max(ours, await _jobqueue.enqueue_grpc(jq_target, n, in_flight))
                label = "sequential" if in_flight == 1 else f"{in_flight} in flight"
                self.add(f"enqueue gRPC {label}", "no-op grpc.aio floor", floor, "jobs/s")
                self.add(
                    f"enqueue gRPC {label}",
                    "jobqueue",
                    ours,
                    "jobs/s",
                    of_floor=round(ours / floor, 3),
                )
            self.add(
                "enqueue bulk (1,000/call)",
                "jobqueue gRPC EnqueueJobs",
                await self.best_of_two(lambda: _jobqueue.enqueue_bulk_grpc(jq_target, n)),
                "jobs/s",
            )
        finally:
            noop.stop()
            server.stop()
        self.add(
            "enqueue bulk (1,000/call)",
            "jobqueue direct",
            await self.best_of_two(lambda: _jobqueue.enqueue_bulk_direct(self.url, n)),
            "jobs/s",
        )
        self.add(
            "enqueue direct sequential",
            "jobqueue",
            await self.best_of_two(lambda: _jobqueue.enqueue_direct(self.url, n)),
            "jobs/s",
        )
        for peer in self.peers:
            rate = await self.best_of_two(lambda peer=peer: _peers.enqueue(peer, self.url, n))  # type: ignore[misc]
            self.add("enqueue direct sequential", peer, rate, "jobs/s")
        if "rq" in self.peers:

            async def rq_bulk() -> float:
                return _peers.rq_enqueue_bulk(self.url, n)

            self.add(
                "enqueue bulk (1,000/call)",
                "rq enqueue_many",
                await self.best_of_two(rq_bulk),
                "jobs/s",
            )

    async def best_of_two(self, measure: Callable[[], Awaitable[float]]) -> float:
        """The better of two rounds, each on a flushed Redis: the machine is noisy."""
        best = 0.0
        for _ in range(2):
            self.fresh()
            best = max(best, await measure())
        return best

    async def drain(self) -> None:
        n = self.counts.drain
        self.fresh()
        await _jobqueue.prefill(self.url, n)
        self._drained("drain direct Redis", "jobqueue", self.worker("drain", n))
        server, target = self.jq_server()
        try:
            self.fresh()
            await _jobqueue.prefill(self.url, n)
            worker = self.worker("drain", n, target=target)
            self._drained("drain through server", "jobqueue", worker)
        finally:
            server.stop()
        for peer in self.peers:
            self.fresh()
            try:
                await _peers.enqueue(peer, self.url, n)
                self._drained("drain direct Redis", peer, self.worker("drain", n, peer=peer))
            except Exception as error:  # one broken peer must not cost the whole run
                self.failed("drain direct Redis", peer, error)

    def _drained(self, workload: str, system: str, worker: Child) -> None:
        result = worker.result(self.args.child_timeout + 30)
        seconds = result["seconds"]
        detail = {
            "count": result["count"],
            "seconds": round(seconds, 3),
            "concurrency": result["concurrency"],
            "peak_rss_mib": round(result["rss_mib"], 1),
        }
        if "settled_seconds" in result:
            detail["settled_seconds"] = round(result["settled_seconds"], 3)
        self.add(workload, system, result["count"] / seconds, "jobs/s", **detail)

    async def latency(self) -> None:
        n = self.counts.latency
        systems = ["jobqueue", *(p for p in self.peers if p != "rq")]
        for system in systems:
            try:
                await self._latency(system, n)
            except Exception as error:
                self.failed("latency", system, error)

    async def _latency(self, system: str, n: int) -> None:
        self.fresh()
        peer = "" if system == "jobqueue" else system
        worker = self.worker("latency", n, peer=peer)
        worker.wait_ready()
        await asyncio.sleep(0.5)
        if peer:
            await _peers.enqueue(peer, self.url, n, rate=100.0)
        else:
            await _jobqueue.enqueue_paced_direct(self.url, n, 100.0)
        result = worker.result(self.args.child_timeout)
        ms = [v * 1000 for v in result["latencies"]]
        self.add("latency enqueue->start p50", system, percentile(ms, 50), "ms", count=len(ms))
        self.add("latency enqueue->start p99", system, percentile(ms, 99), "ms", count=len(ms))

    async def scaling(self) -> None:
        m = self.counts.scaling_jobs
        self.fresh()
        await _jobqueue.claim_complete(self.url, m // 4)  # warm up: scripts, connections
        for pending in (self.counts.pending_small, self.counts.pending_large):
            self.fresh()
            before = self._used_memory()
            far = int(time.time() * 1000) + 7 * 24 * 3600 * 1000
            await _jobqueue.prefill(self.url, pending, execution_time_ms=far)
            per_job = (self._used_memory() - before) / pending
            rate = await _jobqueue.claim_complete(self.url, m)
            label = f"{pending:,} pending"
            self.add(
                "scaling claim+complete",
                f"jobqueue, {label}",
                rate,
                "jobs/s",
                us_per_job=round(1e6 / rate, 1),
            )
            if pending == self.counts.pending_large:
                self.add(
                    "scaling Redis bytes/pending job",
                    f"jobqueue, {label}, listpack-value 256",
                    await self._bytes_per_job(pending, listpack_value=256),
                    "bytes",
                )
                self.add(
                    "scaling Redis bytes/pending job",
                    f"jobqueue, {label}",
                    per_job,
                    "bytes",
                    beyond_payload=round(per_job - 100, 1),
                )

    async def _bytes_per_job(self, pending: int, *, listpack_value: int) -> float:
        """Memory per pending job with hashes up to ``listpack_value`` bytes kept as listpacks.

        Redis keeps a hash compact only while every value is at most
        hash-max-listpack-value (64 by default): a 100-byte payload turns
        the job hash into a real hash table.
        """
        self.fresh()
        default = str(self.redis.config_get("hash-max-listpack-value")["hash-max-listpack-value"])
        self.redis.config_set("hash-max-listpack-value", listpack_value)
        try:
            before = self._used_memory()
            far = int(time.time() * 1000) + 7 * 24 * 3600 * 1000
            await _jobqueue.prefill(self.url, pending, execution_time_ms=far)
            return (self._used_memory() - before) / pending
        finally:
            self.redis.config_set("hash-max-listpack-value", default)

    def _used_memory(self) -> int:
        info: dict[str, Any] = self.redis.info("memory")
        return int(info["used_memory"])


def loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not use_uvloop:
        return None
    import uvloop

    return uvloop.new_event_loop


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--peers", nargs="*", choices=_peers.PEERS, default=list(_peers.PEERS))
    parser.add_argument("--concurrency", type=int, default=500, help="jobqueue worker slots")
    parser.add_argument(
        "--no-uvloop",
        dest="uvloop",
        action="store_false",
        help="async producers, servers and workers (jobqueue, Taskiq, SAQ) on asyncio's own "
        "loop instead of uvloop",
    )
    parser.add_argument("--child-timeout", type=float, default=120.0)
    parser.add_argument("--out", default=str(ROOT / "benchmark-results"))
    args = parser.parse_args()

    print("compiling bytecode ...", flush=True)
    compile_bytecode()
    server = RedisProcess()
    server.start()
    try:
        bench = Bench(args, server.url)
        started = time.time()
        for workload in args.only:
            print(f"== {workload}", flush=True)
            # Producers run in this process, on the loop the workers use.
            with asyncio.Runner(loop_factory=loop_factory(args.uvloop)) as runner:
                runner.run(getattr(bench, workload)())
        info = machine(server.url)
    finally:
        server.close()
    checks = ratios(bench.rows, bench.peers)
    print_table(bench.rows, checks)
    out = results_record(
        started,
        args,
        machine=info,
        concurrency={"jobqueue": args.concurrency}
        | {peer: _peers.CONCURRENCY[peer][0] for peer in bench.peers},
        rows=[asdict(row) for row in bench.rows],
        checks=checks,
        errors=bench.errors,
    )
    write_results(args.out, [f"{stamp(started)}.json", "latest.json"], out)
    print(f"\nwrote {args.out}/{stamp(started)}.json")
