"""A worker process on the server path that reports what it imported.

Run as ``python -m tests.worker._server_path_worker`` with JOBQUEUE_SERVER
(``host:port``) and SERVER_PATH_JOBS (how many ``noop`` jobs to take) set. It
starts ``Worker(server=...)``, takes the jobs, stops, and prints one JSON
line: the jobs it ran and every module in ``sys.modules`` (issue 17: a worker
through the server should not load what only servers, the CLI or the direct
path need).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from jobqueue.worker import JobContext, Worker


async def drain(target: str, wanted: int) -> int:
    worker = Worker(server=target, concurrency=4)
    done = asyncio.Event()
    seen = 0

    @worker.handler("noop")
    async def noop(job: JobContext) -> None:
        nonlocal seen
        seen += 1
        if seen >= wanted:
            done.set()

    await worker.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=20)
    finally:
        await worker.stop(grace_s=5)
    return seen


def main() -> None:
    ran = asyncio.run(drain(os.environ["JOBQUEUE_SERVER"], int(os.environ["SERVER_PATH_JOBS"])))
    print(json.dumps({"ran": ran, "modules": sorted(sys.modules)}))


if __name__ == "__main__":
    main()
