"""A worker process for the process tests: every run is appended to a ledger in Redis.

Run as ``python -m tests.worker._ledger_worker`` with LEDGER_REDIS_URL,
LEDGER_KEY_PREFIX and LEDGER_KEY set. Handler ``work`` appends
``job_id:attempt:pid`` to the ledger list, then sleeps the payload's
``sleep_first`` seconds on its first run only, so a job can be caught
mid-run by a kill and finished quickly by the next worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

import redis.asyncio as aioredis

from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import JobContext, StoreSource, Worker, WorkerSettings


def main() -> None:
    url = os.environ["LEDGER_REDIS_URL"]
    ledger_key = os.environ["LEDGER_KEY"]
    pid = os.getpid()
    clients: list[aioredis.Redis] = []

    async def work(job: JobContext) -> str:
        if not clients:  # created on first use, inside the worker's event loop
            clients.append(aioredis.Redis.from_url(url))
        await clients[0].rpush(ledger_key, f"{job.id}:{job.attempt}:{pid}")
        # Only the job's first run sleeps (a released job's next run is attempt 1 again).
        if job.payload and await clients[0].set(f"{ledger_key}:ran:{job.id}", 1, nx=True):
            await asyncio.sleep(float(json.loads(job.payload).get("sleep_first", 0)))
        return "ok"

    logging.basicConfig(level=os.environ.get("LEDGER_LOG_LEVEL", "WARNING"))
    prefix = os.environ["LEDGER_KEY_PREFIX"]
    store = RedisJobStore(RedisStoreSettings(url=url, key_prefix=prefix, retention_ms=600_000))
    worker = Worker(
        StoreSource(store, close_store=True),
        settings=WorkerSettings(
            concurrency=int(os.environ.get("LEDGER_CONCURRENCY", "50")),
            lease_ms=int(os.environ.get("LEDGER_LEASE_MS", "1000")),
            claim_wait_ms=500,
            requeue_interval_ms=200,
            shutdown_grace_s=float(os.environ.get("LEDGER_GRACE_S", "5")),
        ),
    )
    worker.register("work", work)
    worker.run()


if __name__ == "__main__":
    main()
