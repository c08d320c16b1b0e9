"""A worker module for the worker command's tests: ``worker`` names no source.

``echo`` returns its payload; ``boom`` fails for good with ``PermanentError:
no``; ``nap`` sleeps the payload's seconds. ``make_worker`` is the callable form.
"""

from __future__ import annotations

import asyncio

from jobqueue.worker import JobContext, PermanentError, Worker

worker = Worker(concurrency=4)


@worker.handler("echo")
async def echo(job: JobContext) -> bytes:
    return job.payload


@worker.handler("boom", max_attempts=1)
async def boom(job: JobContext) -> None:
    raise PermanentError("no")


@worker.handler("nap")
async def nap(job: JobContext) -> str:
    await asyncio.sleep(float(job.payload or b"0"))
    return "rested"


def make_worker() -> Worker:
    built = Worker()
    built.register("echo", echo)
    return built


not_a_worker = 42
