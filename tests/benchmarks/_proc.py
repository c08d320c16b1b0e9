"""Entry point of the benchmark's child processes: servers and workers."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


def _run(coro: Coroutine[Any, Any, None], use_uvloop: bool) -> None:
    if use_uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    else:
        asyncio.run(coro)


PRODUCERS = ("prefill", "enqueue-direct", "bulk-direct", "enqueue-grpc", "bulk-grpc", "paced")


async def _produce(args: argparse.Namespace) -> None:
    """One producer workload in a process of its own, reporting its rate.

    compare.py runs it with PYTHONPATH on another tree's packages, so the same
    harness drives the baseline's library and HEAD's alike.
    """
    import time

    from . import _jobqueue
    from ._common import report

    cpu = time.process_time()
    rate = 0.0
    if args.workload == "prefill":
        await _jobqueue.prefill(args.redis_url, args.count)
    elif args.workload == "enqueue-direct":
        rate = await _jobqueue.enqueue_direct(args.redis_url, args.count)
    elif args.workload == "bulk-direct":
        rate = await _jobqueue.enqueue_bulk_direct(args.redis_url, args.count)
    elif args.workload == "enqueue-grpc":
        rate = await _jobqueue.enqueue_grpc(args.target, args.count, args.in_flight)
    elif args.workload == "bulk-grpc":
        rate = await _jobqueue.enqueue_bulk_grpc(args.target, args.count)
    else:
        await _jobqueue.enqueue_paced_direct(args.redis_url, args.count, 100.0)
    report({"rate": rate, "cpu_s": time.process_time() - cpu})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "role", choices=["jq-server", "noop-server", "jq-worker", "jq-producer", "peer-worker"]
    )
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--target", default="", help="server host:port; empty: direct Redis")
    parser.add_argument("--mode", choices=["drain", "latency"], default="drain")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--peer", default="")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument(
        "--workload",
        choices=sorted(PRODUCERS),
        default="enqueue-direct",
        help="jq-producer: which producer to run (compare.py runs each tree's own)",
    )
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument(
        "--handler",
        choices=["noop", "incr"],
        default="noop",
        help="workers: a no-op handler, or one INCR round trip to Redis per job",
    )
    parser.add_argument(
        "--probe", action="store_true", help="jq-worker, jq-server: cost window (_probes)"
    )
    parser.add_argument("--allocs-path", default="", help="with --probe: count allocations")
    parser.add_argument("--profile-path", default="", help="with --probe: cProfile to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    # Imports per role: a worker's peak RSS must not include what only servers need.
    # Both servers run on the loop jobqueue-server picks by default (uvloop where
    # installed), so the floor and the server differ only in their handlers.
    if args.role == "jq-server":
        from . import _jobqueue

        _run(
            _jobqueue.run_server(
                args.redis_url,
                args.port,
                probe=args.probe,
                allocs_path=args.allocs_path,
                profile_path=args.profile_path,
            ),
            args.uvloop,
        )
    elif args.role == "noop-server":
        from . import _jobqueue

        _run(_jobqueue.run_noop_server(args.port), args.uvloop)
    elif args.role == "jq-producer":
        _run(_produce(args), args.uvloop)
    elif args.role == "jq-worker":
        from . import _jobqueue_worker

        _run(
            _jobqueue_worker.run_worker(
                redis_url=args.redis_url,
                target=args.target,
                mode=args.mode,
                count=args.count,
                concurrency=args.concurrency,
                timeout_s=args.timeout,
                handler=args.handler,
                probe=args.probe,
                allocs_path=args.allocs_path,
                profile_path=args.profile_path,
            ),
            args.uvloop,
        )
    else:
        from . import _peers

        _peers.run_worker(
            args.peer,
            args.redis_url,
            args.mode,
            args.count,
            args.concurrency,
            args.uvloop,
            handler=args.handler,
        )


if __name__ == "__main__":
    main()
