"""Running one job: its handler under its timeout and middleware, and the verdict it earns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from jobqueue.domain import Lease, Outcome, OutcomeKind

from ._context import JobContext
from ._errors import HandlerTimeout, JobCancelled
from ._handler import Handler, encode_result
from ._logging import job_fields, job_label, logger
from ._outcomes import cancelled_outcome, failure, unstorable
from ._progress import ProgressReporter
from ._registry import Invoke
from ._settings import WorkerSettings
from ._state import InFlight
from ._threads import DaemonThreadPool
from ._tracing import start_run

if TYPE_CHECKING:
    from ._metrics import WorkerMetrics


class JobRunner:
    """Starts a task per claimed job, turns how it ended into an outcome, queues it.

    It also carries out what the lease keeper decides: ``abandon`` a job whose
    lease is lost, ``request_cancel`` one whose cancellation was asked for.
    """

    def __init__(
        self,
        handlers: dict[str, Handler],
        settings: WorkerSettings,
        state: InFlight,
        pool: DaemonThreadPool | None,
    ) -> None:
        self._handlers = handlers
        self._settings = settings
        self._state = state
        self._pool = pool
        self._max_result_bytes = settings.max_result_bytes
        self._store_traceback = settings.store_traceback
        # The handler's run inside every middleware; set by the worker at start.
        self.invoke_chain: Invoke = self.invoke
        # Prometheus metrics of the runs, when the worker keeps them (_metrics.py).
        self.metrics: WorkerMetrics | None = None
        # Where handlers' progress goes, when the source stores it (_progress.py).
        self.progress: ProgressReporter | None = None

    def launch(self, lease: Lease, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        job = lease.job
        handler = self._handlers.get(job.type)
        state = self._state
        if handler is None:
            # Cannot happen with a correct source (we claim only our types);
            # give the job straight back rather than hold it until the lease expires.
            logger.error(
                "job %s (%s, attempt %d) has no handler here: released",
                job.id,
                job.type,
                job.attempts,
                extra={"job_id": job.id, "job_type": job.type, "attempt": job.attempts},
            )
            state.queue(Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.RELEASE))
            return
        max_attempts = (
            job.max_attempts or handler.max_attempts or self._settings.default_max_attempts
        )
        ctx = JobContext(lease, handler, max_attempts, deadline)
        ctx._progress = self.progress
        state.jobs[lease.token] = ctx
        stuck = state.stuck.get(job.id)
        if stuck is None:
            ctx._task = loop.create_task(self.run(ctx))
        else:
            # Our own earlier run of this job lost its lease but its thread has
            # not returned: one run of a job at a time, so this one waits for it
            # (its lease is kept meanwhile, like any job in flight).
            ctx._task = loop.create_task(self._run_after(stuck, ctx))

    async def _run_after(self, earlier: asyncio.Task[None], ctx: JobContext) -> None:
        await asyncio.wait([earlier])
        await self.run(ctx)

    async def run(self, ctx: JobContext) -> None:
        lease = ctx._lease
        state = self._state
        started = time.perf_counter()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s started", job_label(ctx), extra=job_fields(ctx))
        metrics = self.metrics
        if metrics is not None:
            metrics.started(ctx)
        span = start_run(ctx)
        raised: BaseException | None = None
        outcome: Outcome | None
        try:
            value = await self.invoke_chain(ctx)
        except asyncio.CancelledError as error:
            outcome = cancelled_outcome(ctx, store_traceback=self._store_traceback)
            if outcome is None and not ctx._lost:
                state.jobs.pop(lease.token, None)
                if span is not None:
                    span.end(None, error)
                raise
        except JobCancelled:
            outcome = Outcome(job_id=ctx.id, token=lease.token, kind=OutcomeKind.CANCELLED)
        except Exception as error:
            raised = error
            duration_s = time.perf_counter() - started
            outcome = failure(ctx, error, duration_s, store_traceback=self._store_traceback)
        else:
            outcome = self._completed(ctx, value, started)
        if metrics is not None or span is not None:
            kind = None if ctx._lost or outcome is None else outcome.kind
            if metrics is not None:
                metrics.ended(ctx, kind, time.perf_counter() - started)
            if span is not None:
                span.end(kind, raised)
        if ctx._lost or outcome is None:
            # The store already gave the job to someone else: our verdict would be refused.
            state.jobs.pop(lease.token, None)
            state.slot_freed()
            return
        if outcome.kind is OutcomeKind.COMPLETE:
            if logger.isEnabledFor(logging.DEBUG):
                _log_end(logging.DEBUG, ctx, started, "completed")
        elif outcome.kind is not OutcomeKind.RETRY and outcome.kind is not OutcomeKind.FAIL:
            verdict = "cancelled" if outcome.kind is OutcomeKind.CANCELLED else "released"
            _log_end(logging.INFO, ctx, started, verdict)
        if ctx._reported and self.progress is not None:
            # The last value reported, while the lease still holds.
            await self.progress.flush(lease.token)
        ctx._settling = True
        state.queue(outcome)

    def _completed(self, ctx: JobContext, value: Any, started: float) -> Outcome:
        try:
            result = encode_result(value)
        except (TypeError, ValueError) as error:
            duration_s = time.perf_counter() - started
            return unstorable(ctx, error, duration_s, self._max_result_bytes)
        if result is not None and len(result) > self._max_result_bytes:
            duration_s = time.perf_counter() - started
            return unstorable(ctx, result, duration_s, self._max_result_bytes)
        return Outcome(
            job_id=ctx.id, token=ctx._lease.token, kind=OutcomeKind.COMPLETE, result=result
        )

    def invoke(self, ctx: JobContext) -> Awaitable[Any]:
        """The handler's run, awaited by ``run`` (or by a middleware).

        An async handler without a timeout is its own coroutine: a wrapper
        coroutine per job would cost CPU on the hot path for nothing.
        """
        handler = ctx._handler
        if handler.is_async and handler.timeout_s is None:
            return handler.func(ctx)
        return self._invoke_guarded(ctx)

    async def _invoke_guarded(self, ctx: JobContext) -> Any:
        handler = ctx._handler
        timeout_s = handler.timeout_s
        if handler.is_async:
            call: Awaitable[Any] = handler.func(ctx)
            if timeout_s is None:
                return await call
            try:
                async with asyncio.timeout(timeout_s) as scope:
                    return await call
            except TimeoutError:
                if not scope.expired():
                    raise
                ctx._cancel()
                raise HandlerTimeout(handler.type, timeout_s) from None
        assert self._pool is not None
        thread = asyncio.get_running_loop().run_in_executor(self._pool, handler.func, ctx)
        if timeout_s is None:
            return await thread
        try:
            async with asyncio.timeout(timeout_s) as scope:
                # Shielded: the timeout must not detach us from the thread.
                return await asyncio.shield(thread)
        except TimeoutError:
            if not scope.expired():
                raise
        ctx._timed_out = True
        ctx._cancel()  # lets a thread handler that checks the flag stop early
        # One run of a job at a time: the attempt keeps its slot and its lease
        # (the heartbeat renews it) until the thread returns; only then may the
        # job be retried.
        with contextlib.suppress(Exception):
            await thread
        raise HandlerTimeout(handler.type, timeout_s)

    def abandon(self, ctx: JobContext, reason: str) -> None:
        """Give up a job whose lease we no longer hold: stop its handler, send no outcome."""
        if ctx._lost:
            return
        ctx._lost = True
        ctx._cancel()
        fields = job_fields(ctx)
        fields["reason"] = reason
        state = self._state
        if ctx._settling:
            # Its outcome waits to be sent or is on its way; if still waiting, drop it.
            logger.info(
                "%s: lease lost before its outcome was stored (%s)",
                job_label(ctx),
                reason,
                extra=fields,
            )
            state.outbox = state.without_lost(state.outbox)
            return
        logger.warning(
            "%s: lease lost, abandoning the job (%s)", job_label(ctx), reason, extra=fields
        )
        task = ctx._task
        if task is None or task.done():
            return
        if ctx._handler.is_async:
            task.cancel()
            return
        # A thread cannot be interrupted: it keeps its slot until it returns
        # (it sees ``cancelled``), and its outcome is then discarded. Should
        # this worker claim the job again meanwhile, that run waits for it.
        job_id = ctx.id
        state.stuck[job_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if state.stuck.get(job_id) is done:
                del state.stuck[job_id]

        task.add_done_callback(forget)

    def request_cancel(self, ctx: JobContext) -> None:
        logger.info("%s: cancellation requested", job_label(ctx), extra=job_fields(ctx))
        ctx._cancel()
        # A thread cannot be interrupted: it sees ``cancelled`` and its outcome
        # is then settled as it comes (a retry of a cancelled job ends CANCELLED).
        if ctx._handler.is_async and ctx._task is not None:
            ctx._task.cancel()


def _log_end(level: int, ctx: JobContext, started: float, verdict: str) -> None:
    fields = job_fields(ctx)
    duration_ms = (time.perf_counter() - started) * 1000
    fields["duration_ms"] = round(duration_ms, 3)
    fields["outcome"] = verdict
    logger.log(level, "%s %s after %.0f ms", job_label(ctx), verdict, duration_ms, extra=fields)
