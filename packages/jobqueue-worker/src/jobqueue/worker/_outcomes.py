"""The worker's verdicts on a finished attempt: what is stored, and what is logged.

Kept apart from the run loop so its rules read in one place: which failures
are retried, which are final, and what a job's error says.
"""

from __future__ import annotations

import asyncio
import traceback

from jobqueue.domain import Limits, Outcome, OutcomeKind, failure_outcome, result_too_large

from ._context import JobContext
from ._errors import HandlerTimeout, PermanentError
from ._logging import error_text, job_fields, job_label, logger

MAX_ERROR_MESSAGE_CHARS = 1_000
"""A stored error's message is cut here: the job record is read by clients, not a log."""


def describe_error(error: BaseException, *, with_traceback: bool = False) -> str:
    """The text stored as a failed job's ``last_error``.

    By default the exception's type and message only (cut at 1,000
    characters): a job is read by clients of the API, who should see what went
    wrong but not the worker machine's file paths and code. The full traceback
    goes to the worker's log; ``with_traceback`` (``WorkerSettings.store_traceback``)
    appends it to the stored text too (the store bounds the whole at 8 KiB).
    """
    head = error_text(error)
    if len(head) > MAX_ERROR_MESSAGE_CHARS:
        head = head[: MAX_ERROR_MESSAGE_CHARS - 1] + "…"
    if not with_traceback or error.__traceback__ is None:
        return head
    frames = traceback.format_tb(error.__traceback__)
    return head + "\nTraceback (most recent call last):\n" + "".join(frames).rstrip()


def failure(
    ctx: JobContext, error: Exception, duration_s: float, *, store_traceback: bool = False
) -> Outcome:
    """RETRY or FAIL for a handler that raised ``error``: the retry policy decides."""
    outcome = failure_outcome(
        ctx._lease,
        describe_error(error, with_traceback=store_traceback),
        permanent=isinstance(error, PermanentError),
        policy=ctx._handler.retry,
        default_max_attempts=ctx.max_attempts,
    )
    fields = job_fields(ctx)
    fields["duration_ms"] = round(duration_s * 1000, 3)
    fields["error"] = error_text(error)
    fields["error_type"] = type(error).__qualname__
    if outcome.kind is OutcomeKind.RETRY:
        delay_ms = outcome.retry_delay_ms or 0
        fields["retry_delay_ms"] = delay_ms
        logger.warning(
            "%s failed after %.0f ms, retrying in %.3g s: %s",
            job_label(ctx),
            duration_s * 1000,
            delay_ms / 1000,
            fields["error"],
            extra=fields,
            exc_info=error,
        )
    else:
        why = "permanent error" if isinstance(error, PermanentError) else "no attempts left"
        logger.error(
            "%s failed for good after %.0f ms (%s): %s",
            job_label(ctx),
            duration_s * 1000,
            why,
            fields["error"],
            extra=fields,
            exc_info=error,
        )
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
    logger.error("%s failed: its result cannot be stored: %s", job_label(ctx), error, extra=fields)
    return Outcome(job_id=ctx.id, token=ctx._lease.token, kind=OutcomeKind.FAIL, error=error)


def cancelled_outcome(ctx: JobContext, *, store_traceback: bool = False) -> Outcome | None:
    """The outcome after a job's task was cancelled, or None when it is not ours to settle."""
    if ctx._lost:
        return None
    if ctx._shutdown:
        if ctx._timed_out:
            # Past its timeout the attempt has failed; stopping must not give it back.
            timeout_s = ctx._handler.timeout_s or 0.0
            error = HandlerTimeout(ctx.type, timeout_s)
            return failure(ctx, error, timeout_s, store_traceback=store_traceback)
        return Outcome(job_id=ctx.id, token=ctx._lease.token, kind=OutcomeKind.RELEASE)
    if ctx._cancelled:
        return Outcome(job_id=ctx.id, token=ctx._lease.token, kind=OutcomeKind.CANCELLED)
    task = asyncio.current_task()
    if task is not None and task.cancelling() == 0:
        # The handler raised CancelledError itself (an inner task was cancelled):
        # that is the handler's failure, not a request to stop this worker.
        logger.warning(
            "%s failed: the handler raised asyncio.CancelledError",
            job_label(ctx),
            extra=job_fields(ctx),
        )
        return failure_outcome(
            ctx._lease,
            "CancelledError: the handler raised asyncio.CancelledError",
            policy=ctx._handler.retry,
            default_max_attempts=ctx.max_attempts,
        )
    return None  # the event loop is shutting down: the lease will expire
