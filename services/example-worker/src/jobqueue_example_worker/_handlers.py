"""Demonstration handlers: one that works, one that fails twice first, one that takes time.

``worker`` is what the worker command runs (``jobqueue-worker
jobqueue_example_worker:worker``): it names no source, so the command's
``--redis-url`` / ``--server`` (or ``JOBQUEUE_REDIS_URL`` / ``JOBQUEUE_SERVER``)
say where the jobs are.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jobqueue.domain import RetryPolicy
from jobqueue.worker import JobContext, PermanentError, Worker

logger = logging.getLogger("jobqueue_example_worker")


async def send_email(job: JobContext) -> dict[str, Any]:
    """Pretend to send ``{"to": ..., "subject": ...}``; a payload without ``to`` cannot succeed."""
    message = _json_object(job)
    to = message.get("to")
    if not isinstance(to, str) or "@" not in to:
        raise PermanentError("the payload needs a 'to' address")
    logger.info(
        "sending email", extra={"job_id": job.id, "to": to, "subject": message.get("subject")}
    )
    return {"status": "sent", "to": to}


async def flaky(job: JobContext) -> dict[str, int]:
    """Fail on the first two attempts, then succeed: shows retries with backoff."""
    if job.attempt <= 2:
        raise RuntimeError(f"flaky failure on attempt {job.attempt}")
    return {"succeeded_on_attempt": job.attempt}


async def slow(job: JobContext) -> dict[str, float]:
    """Sleep the seconds in the payload (``5`` or ``{"seconds": 5}``).

    ``asyncio.sleep`` is interrupted when the job is cancelled or the worker
    gives up on it, so cancellation takes effect at once.
    """
    payload = job.json() if job.payload else 1
    seconds = payload.get("seconds", 1) if isinstance(payload, dict) else payload
    if not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
        raise PermanentError("the payload must be a number of seconds between 0 and 3600")
    await asyncio.sleep(seconds)
    return {"slept_s": seconds}


def register_handlers(worker: Worker) -> None:
    """Register every example handler on ``worker``."""
    worker.register("send_email", send_email, max_attempts=5, timeout_s=30)
    worker.register("flaky", flaky, max_attempts=5, retry=RetryPolicy(base_ms=500, jitter=False))
    worker.register("slow", slow)


def _json_object(job: JobContext) -> dict[str, Any]:
    try:
        value = job.json()
    except ValueError:
        raise PermanentError("the payload is not JSON") from None
    if not isinstance(value, dict):
        raise PermanentError("the payload must be a JSON object")
    return value


worker = Worker()
register_handlers(worker)
