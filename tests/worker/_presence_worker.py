"""A worker process for the presence tests: it registers, heartbeats and does nothing else.

Run as ``python -m tests.worker._presence_worker`` with JOBQUEUE_REDIS_URL,
JOBQUEUE_KEY_PREFIX and PRESENCE_TTL_MS set.
"""

from __future__ import annotations

import os

from jobqueue.worker import JobContext, Worker, WorkerSettings


async def present(job: JobContext) -> None:
    return None


def main() -> None:
    worker = Worker(
        redis_url=os.environ["JOBQUEUE_REDIS_URL"],
        key_prefix=os.environ["JOBQUEUE_KEY_PREFIX"],
        settings=WorkerSettings(
            concurrency=3,
            presence_ttl_ms=int(os.environ["PRESENCE_TTL_MS"]),
            shutdown_grace_s=1.0,
        ),
    )
    worker.register("present", present)
    worker.run()


if __name__ == "__main__":
    main()
