"""The worker's verdicts on a finished attempt: what is stored, and what is logged.

Kept apart from the run loop so its rules read in one place: which failures
are retried, which are final, and what a job's error says.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

from jobqueue.domain import Limits, Outcome, OutcomeKind, failure_outcome, result_too_large

from ._context import JobContext
from ._errors import HandlerTimeout, PermanentError

logger = logging.getLogger("jobqueue.worker")

_TRACEBACK_FRAMES = 5


def job_fields(ctx: JobContext) -> dict[str, Any]:
    return {"job_id": ctx.id, "job_type": ctx.type, "attempt": ctx.attempt}


def describe_error(error: BaseException) -> str:
    """The text stored as a failed job's error: type, message, then the innermost frames."""
    head = f"{type(error).__qualname__}: {error}"
    frames = traceback.extract_tb(error.__traceback__)[-_TRACEBACK_FRAMES:]
    if not frames:
        return head
    return head + "\n" + "".join(traceback.format_list(frames)).rstrip()


def failure(ctx: JobContext, error: Exception, duration_s: float) -> Outcome:
    """RETRY or FAIL for a handler that raised ``error``: the retry policy decides."""
    outcome = failure_outcome(
        ctx._lease,
        describe_error(error),
        permanent=isinstance(error, PermanentError),
        policy=ctx._handler.retry,
        default_max_attempts=ctx.max_attempts,
    )
    fields = job_fields(ctx)
    fields["duration_ms"] = round(duration_s * 1000, 3)
    fields["error"] = f"{type(error).__name__}: {error}"
    if outcome.kind is OutcomeKind.RETRY:
        fields["retry_delay_ms"] = outcome.retry_delay_ms
        logger.warning("job failed, will retry", extra=fields)
    else:
        logger.error("job failed", extra=fields, exc_info=error)
    return outcome


def unstorable(
    ctx: JobContext, cause: Exception | bytes, duration_s: float, max_result_bytes: int
) -> Outcome:
    """A FAIL for a result that cannot be stored: a retry would return the same one.

    ``cause`` is the encoding error, or the encoded result when it is too large.
    """
    if isinstance(cause, bytes):
        error = result_too_large(cause, Limits(max_result_bytes=max_result_bytes))
    else:
        error = (
            f"{type(cause).__qualname__}: the handler's result cannot be stored: {cause} "
            "(return bytes, str, None or a JSON-serialisable value)"
        )
    fields = job_fields(ctx)
    fields["duration_ms"] = round(duration_s * 1000, 3)
    fields["error"] = error
    logger.error("job failed: its result cannot be stored", extra=fields)
    return Outcome(job_id=ctx.id, token=ctx._lease.token, kind=OutcomeKind.FAIL, error=error)


def cancelled_outcome(ctx: JobContext) -> Outcome | None:
    """The outcome after a job's task was cancelled, or None when it is not ours to settle."""
    if ctx._lost:
        return None
    if ctx._shutdown:
        if ctx._timed_out:
            # Past its timeout the attempt has failed; stopping must not give it back.
            timeout_s = ctx._handler.timeout_s or 0.0
            return failure(ctx, HandlerTimeout(ctx.type, timeout_s), timeout_s)
        return Outcome(job_id=ctx.id, token=ctx._lease.token, kind=OutcomeKind.RELEASE)
    if ctx._cancelled:
        return Outcome(job_id=ctx.id, token=ctx._lease.token, kind=OutcomeKind.CANCELLED)
    task = asyncio.current_task()
    if task is not None and task.cancelling() == 0:
        # The handler raised CancelledError itself (an inner task was cancelled):
        # that is the handler's failure, not a request to stop this worker.
        return failure_outcome(
            ctx._lease,
            "CancelledError: the handler raised asyncio.CancelledError",
            policy=ctx._handler.retry,
            default_max_attempts=ctx.max_attempts,
        )
    return None  # the event loop is shutting down: the lease will expire
