"""The Worker: claims jobs in batches, runs their handlers, settles outcomes in batches."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

from jobqueue.domain import Lease, Outcome, OutcomeKind, RetryPolicy, validate_type

from ._context import JobContext
from ._errors import (
    HandlerAlreadyRegistered,
    HandlerTimeout,
    JobCancelled,
    WorkerStateError,
)
from ._handler import Handler, HandlerFunc, encode_result, is_async_callable
from ._leases import LeaseKeeper, backoff_s
from ._outcomes import cancelled_outcome, failure, job_fields, unstorable
from ._settings import WorkerSettings
from ._source import JobSource
from ._threads import DaemonThreadPool

logger = logging.getLogger("jobqueue.worker")

CallNext: TypeAlias = Callable[[], Awaitable[Any]]
Middleware: TypeAlias = Callable[[JobContext, CallNext], Awaitable[Any]]
"""Wraps every job: ``async def mw(ctx, call_next): ... return await call_next()``.

It sees the context before the handler runs, the handler's return value (and
may replace it) and any exception the handler raises (and may translate it).
"""

_F = TypeVar("_F", bound=HandlerFunc)
_Invoke: TypeAlias = Callable[[JobContext], Awaitable[Any]]
_CLAIM_REPLY_BOUND_S = 10.0
"""How long ``stop`` waits for an in-flight claim beyond its wait (GrpcSource's default timeout)."""


class Worker:
    """Runs registered handlers for jobs taken from a ``JobSource``.

    A worker claims only the job types it has handlers for, in batches of up to
    its free slots; when there is nothing to do it waits inside the source
    until a job is due, so a job starts within milliseconds. Outcomes of many
    handlers are stored in one call (a group commit: the next batch is sent as
    soon as the previous one returns), and one heartbeat renews every lease
    (see ``LeaseKeeper`` for confirmation, fencing and immediate cancels).

    Args:
        source: where jobs come from (``StoreSource`` or ``GrpcSource``).
        settings: every tunable; the keyword arguments below override its fields.
        concurrency: jobs in flight at once.
        lease_ms: lease length; a crashed worker's jobs return after it.
        shutdown_grace_s: how long ``stop`` lets running jobs finish.

    Example:
        >>> worker = Worker(StoreSource(store), concurrency=50)
        >>> @worker.handler("send_email", max_attempts=5, timeout=30)
        ... async def send_email(job: JobContext) -> dict[str, str]:
        ...     return {"sent_to": job.json()["to"]}
        >>> worker.run()
    """

    def __init__(
        self,
        source: JobSource,
        *,
        settings: WorkerSettings | None = None,
        concurrency: int | None = None,
        lease_ms: int | None = None,
        shutdown_grace_s: float | None = None,
    ) -> None:
        overrides: dict[str, Any] = {
            name: value
            for name, value in (
                ("concurrency", concurrency),
                ("lease_ms", lease_ms),
                ("shutdown_grace_s", shutdown_grace_s),
            )
            if value is not None
        }
        self._settings = dataclasses.replace(settings or WorkerSettings(), **overrides)
        self._source = source
        settings = self._settings
        # A claim's lease is counted from when the claim was sent, so a claim
        # that waits long in the store eats into it: keep the wait well short.
        self._claim_wait_ms = min(settings.claim_wait_ms, settings.lease_ms // 4)
        self._max_result_bytes = settings.max_result_bytes
        self._handlers: dict[str, Handler] = {}
        self._middlewares: list[Middleware] = []
        self._invoke_chain: _Invoke = self._invoke
        # Keyed by lease token, not job id: a job re-delivered to us after a
        # lost lease must not overwrite the abandoned attempt's entry.
        self._inflight: dict[str, JobContext] = {}
        # Job id -> the task of a thread run of it whose lease was lost but
        # whose thread has not returned (see _abandon).
        self._stuck: dict[str, asyncio.Task[None]] = {}
        self._outbox: list[Outcome] = []
        self._unsettled = 0  # outcomes queued or being sent, some with no _inflight entry
        self._leases = LeaseKeeper(
            source, settings, self._inflight, lose=self._abandon, cancel=self._request_cancel
        )
        self._pool: DaemonThreadPool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._claim_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = False
        # Set before the background loops are cancelled: a store call may swallow
        # a cancellation (redis-py can), so each loop also checks this after a call.
        self._closing = False
        # asyncio primitives bind to the running loop on first use, not here.
        self._stopped = asyncio.Event()
        self._slots_freed = asyncio.Event()
        self._outbox_ready = asyncio.Event()
        self._force = asyncio.Event()

    # -- registration -----------------------------------------------------------

    @property
    def settings(self) -> WorkerSettings:
        return self._settings

    @property
    def types(self) -> tuple[str, ...]:
        """The job types this worker claims: exactly those it has handlers for."""
        return tuple(self._handlers)

    @property
    def inflight(self) -> int:
        """Jobs claimed and not yet settled."""
        return len(self._inflight)

    def handler(
        self,
        job_type: str,
        *,
        max_attempts: int | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> Callable[[_F], _F]:
        """Register the decorated function as the handler of ``job_type``.

        Args:
            job_type: the job type it handles.
            max_attempts: attempts of jobs whose producer left the number open.
            timeout: seconds an attempt may run before it is cancelled and
                counted as a failure (``HandlerTimeout``). An async handler is
                cancelled. A thread handler cannot be killed: its ``cancelled``
                flag is set, and it keeps its slot and its lease (still renewed)
                until the function returns; only then is the attempt failed or
                retried, so two runs of one job never overlap.
            retry: backoff between attempts; the worker's default otherwise.

        A plain ``def`` runs in the worker's thread pool so it cannot block the
        event loop. The return value becomes the job's result: bytes as they
        are, str as UTF-8, None as no result, anything else as compact JSON. A
        result that cannot be encoded, or is over ``max_result_bytes``, fails
        the job at once (retrying would give the same result).

        At shutdown, ``stop`` waits up to its grace period for running
        handlers. A thread still running after it is not waited for: its
        ``cancelled`` flag is set and its job released (or, past its timeout,
        failed or retried) so another worker may take it. The thread runs on
        until its function returns; the pool's threads are daemon threads, so
        a process that exits does not wait for it (and ends it), but in an
        application that keeps running after ``stop`` it may overlap the job's
        next run elsewhere. Long thread handlers should check ``cancelled``.
        """

        def register(func: _F) -> _F:
            self.register(job_type, func, max_attempts=max_attempts, timeout=timeout, retry=retry)
            return func

        return register

    def register(
        self,
        job_type: str,
        func: HandlerFunc,
        *,
        max_attempts: int | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        """Register ``func`` as the handler of ``job_type``; see ``handler``."""
        if self._started:
            raise WorkerStateError("handlers must be registered before the worker starts")
        validate_type(job_type)
        if job_type in self._handlers:
            raise HandlerAlreadyRegistered(job_type)
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive")
        self._handlers[job_type] = Handler(
            type=job_type,
            func=func,
            is_async=is_async_callable(func),
            max_attempts=max_attempts,
            timeout_s=timeout if timeout is not None else self._settings.default_timeout_s,
            retry=retry or self._settings.default_retry,
        )

    def add_middleware(self, middleware: Middleware) -> None:
        """Wrap every job in ``middleware``; the first added is the outermost.

        Use it for tracing, metrics or context propagation. It runs on the
        event loop, also around thread handlers.
        """
        if self._started:
            raise WorkerStateError("middleware must be added before the worker starts")
        self._middlewares.append(middleware)

    # -- life cycle -------------------------------------------------------------

    def run(self, *, uvloop: bool | None = None) -> None:
        """Run until SIGTERM or SIGINT, then stop gracefully; blocks the calling thread.

        A second signal skips the rest of the grace period: running jobs are
        cancelled at once and released to other workers. The loop is uvloop
        where it is installed (it drains faster, see docs/benchmarks.md),
        unless ``uvloop`` says otherwise: True requires it, False refuses it.
        """
        factory = None
        if uvloop is not False:
            try:
                from uvloop import new_event_loop
            except ImportError:
                if uvloop:
                    raise
            else:
                factory = new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(self._run_until_signalled())

    async def start(self) -> None:
        """Start claiming and running jobs in the background of the running event loop."""
        if self._started:
            raise WorkerStateError("the worker was already started")
        if not self._handlers:
            raise WorkerStateError("register at least one handler before starting the worker")
        self._started = True
        if not all(handler.is_async for handler in self._handlers.values()):
            size = self._settings.thread_pool_size or min(32, self._settings.concurrency)
            self._pool = DaemonThreadPool(size, thread_name_prefix="jobqueue-handler")
        chain: _Invoke = self._invoke
        for middleware in reversed(self._middlewares):
            chain = functools.partial(_call_middleware, middleware, chain)
        self._invoke_chain = chain
        self._claim_task = asyncio.create_task(self._claim_loop(), name="jobqueue-claim")
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="jobqueue-settle"),
            *self._leases.start(),
        ]
        if self._settings.requeue_interval_ms:
            self._tasks.append(asyncio.create_task(self._requeue_loop(), name="jobqueue-requeue"))
        logger.info(
            "worker started",
            extra={"job_types": list(self._handlers), "concurrency": self._settings.concurrency},
        )

    async def stop(self, *, grace_s: float | None = None) -> None:
        """Stop gracefully: stop claiming, let running jobs finish, release the rest.

        A claim already sent is not cancelled but awaited, and the jobs it
        returns are released untried. Jobs still running after ``grace_s``
        (default: the settings') are cancelled and released, so another worker
        takes them at once. Returns when every outcome is stored (or the source
        stayed unreachable for the grace period; those jobs come back when
        their leases expire).
        """
        if not self._started:
            return
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        loop = asyncio.get_running_loop()
        grace = self._settings.shutdown_grace_s if grace_s is None else grace_s
        self._slots_freed.set()
        await self._await_claim_task()

        running = {ctx._task for ctx in self._inflight.values() if ctx._task is not None}
        await self._wait_tasks(running, loop.time() + grace)
        unfinished = [
            ctx
            for ctx in self._inflight.values()
            if ctx._task is not None and not ctx._task.done() and not ctx._settling
        ]
        for ctx in unfinished:
            ctx._shutdown = True
            ctx._cancel()
            assert ctx._task is not None
            ctx._task.cancel()
        if unfinished:
            await asyncio.wait([ctx._task for ctx in unfinished if ctx._task is not None])
            logger.info("released unfinished jobs", extra={"count": len(unfinished)})

        await self._wait_settled(loop.time() + max(grace, 1.0))
        self._closing = True
        self._leases.closing = True
        for task in self._tasks:
            task.cancel()
        await _wait_cancelled(self._tasks)
        if self._inflight or self._unsettled:
            logger.warning(
                "stopped with outcomes not stored; those jobs return when their leases expire",
                extra={"count": max(len(self._inflight), self._unsettled)},
            )
        try:
            await self._source.close()
        finally:
            if self._pool is not None:
                # A thread handler cannot be interrupted: do not wait for it.
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._stopped.set()
            logger.info("worker stopped")

    async def _run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        requested = asyncio.Event()

        def on_signal(signum: int) -> None:
            if requested.is_set():
                logger.warning("second signal: cancelling running jobs now")
                self._force.set()
            else:
                logger.info("signal received: stopping", extra={"signal": signum})
                requested.set()

        signals = (signal.SIGTERM, signal.SIGINT)
        for signum in signals:
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            await self.start()
            await requested.wait()
            await self.stop()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)

    # -- running one job --------------------------------------------------------

    def _launch(self, lease: Lease, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        job = lease.job
        handler = self._handlers.get(job.type)
        if handler is None:
            # Cannot happen with a correct source (we claim only our types);
            # give the job straight back rather than hold it until the lease expires.
            logger.error("claimed a job of an unknown type", extra={"job_type": job.type})
            self._queue(Outcome(job_id=job.id, token=lease.token, kind=OutcomeKind.RELEASE))
            return
        max_attempts = (
            job.max_attempts or handler.max_attempts or self._settings.default_max_attempts
        )
        ctx = JobContext(lease, handler, max_attempts, deadline)
        self._inflight[lease.token] = ctx
        stuck = self._stuck.get(job.id)
        if stuck is None:
            ctx._task = loop.create_task(self._run(ctx))
        else:
            # Our own earlier run of this job lost its lease but its thread has
            # not returned: one run of a job at a time, so this one waits for it
            # (its lease is kept meanwhile, like any job in flight).
            ctx._task = loop.create_task(self._run_after(stuck, ctx))

    async def _run_after(self, earlier: asyncio.Task[None], ctx: JobContext) -> None:
        await asyncio.wait([earlier])
        await self._run(ctx)

    async def _run(self, ctx: JobContext) -> None:
        lease = ctx._lease
        started = time.perf_counter()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("job started", extra=job_fields(ctx))
        outcome: Outcome | None
        try:
            value = await self._invoke_chain(ctx)
        except asyncio.CancelledError:
            outcome = cancelled_outcome(ctx)
            if outcome is None and not ctx._lost:
                self._inflight.pop(lease.token, None)
                raise
        except JobCancelled:
            outcome = Outcome(job_id=ctx.id, token=lease.token, kind=OutcomeKind.CANCELLED)
        except Exception as error:
            outcome = failure(ctx, error, time.perf_counter() - started)
        else:
            try:
                result = encode_result(value)
            except (TypeError, ValueError) as error:
                duration_s = time.perf_counter() - started
                outcome = unstorable(ctx, error, duration_s, self._max_result_bytes)
            else:
                if result is not None and len(result) > self._max_result_bytes:
                    duration_s = time.perf_counter() - started
                    outcome = unstorable(ctx, result, duration_s, self._max_result_bytes)
                else:
                    outcome = Outcome(
                        job_id=ctx.id, token=lease.token, kind=OutcomeKind.COMPLETE, result=result
                    )
        if ctx._lost or outcome is None:
            # The store already gave the job to someone else: our verdict would be refused.
            self._inflight.pop(lease.token, None)
            self._slot_freed()
            return
        if outcome.kind is OutcomeKind.COMPLETE:
            if logger.isEnabledFor(logging.DEBUG):
                fields = job_fields(ctx)
                fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
                logger.debug("job completed", extra=fields)
        elif outcome.kind is not OutcomeKind.RETRY and outcome.kind is not OutcomeKind.FAIL:
            fields = job_fields(ctx)
            fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
            fields["outcome"] = outcome.kind.value
            logger.info("job stopped", extra=fields)
        ctx._settling = True
        self._queue(outcome)

    def _invoke(self, ctx: JobContext) -> Awaitable[Any]:
        """The handler's run, awaited by ``_run`` (or by a middleware).

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

    def _queue(self, outcome: Outcome) -> None:
        self._outbox.append(outcome)
        self._unsettled += 1
        self._outbox_ready.set()

    def _slot_freed(self) -> None:
        self._slots_freed.set()

    # -- background loops -------------------------------------------------------

    async def _claim_loop(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self._settings
        types = tuple(self._handlers)
        lease_s = settings.lease_ms / 1000
        failures = 0
        while not self._stopping:
            free = settings.concurrency - len(self._inflight)
            if free <= 0:
                self._slots_freed.clear()
                await self._slots_freed.wait()
                continue
            sent = time.monotonic()
            try:
                leases = await self._source.claim(
                    types, limit=free, lease_ms=settings.lease_ms, wait_ms=self._claim_wait_ms
                )
            except Exception as error:
                failures += 1
                logger.warning("claim failed", extra={"error": repr(error), "failures": failures})
                await self._pause(failures)
                continue
            failures = 0
            if self._stopping:
                for lease in leases:
                    self._queue(
                        Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.RELEASE)
                    )
                return
            if leases:
                deadline = sent + lease_s
                for lease in leases:
                    self._launch(lease, loop, deadline)
                self._leases.claimed()

    async def _flush_loop(self) -> None:
        """Store outcomes in batches: whatever accumulated while the last call was out."""
        failures = 0
        while not self._closing:
            if not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            batch, self._outbox = self._outbox, []
            try:
                stored = await self._source.settle(batch)
            except Exception as error:
                # Keep the batch: outcomes are safe to send again, a stale one is refused.
                self._outbox[:0] = self._without_lost(batch)
                failures += 1
                logger.warning("settle failed", extra={"error": repr(error), "failures": failures})
                await self._pause(failures)
                continue
            failures = 0
            self._unsettled -= len(batch)
            inflight = self._inflight
            for outcome, ok in zip(batch, stored, strict=True):
                inflight.pop(outcome.token, None)
                if not ok:
                    logger.info(
                        "outcome refused: the lease was no longer held",
                        extra={"job_id": outcome.job_id, "outcome": outcome.kind.value},
                    )
            self._slot_freed()

    async def _requeue_loop(self) -> None:
        interval = self._settings.requeue_interval_ms / 1000
        while not self._closing:
            try:
                # One sweep per interval across every process sharing the store.
                count = await self._source.requeue_expired(
                    limit=1_000, lock_ms=self._settings.requeue_interval_ms * 4 // 5
                )
            except Exception as error:
                logger.warning("requeue of expired leases failed", extra={"error": repr(error)})
            else:
                if count:
                    logger.info("requeued jobs with expired leases", extra={"count": count})
            await asyncio.sleep(interval)

    def _without_lost(self, batch: list[Outcome]) -> list[Outcome]:
        """``batch`` less the outcomes of leases given up (the store would refuse them)."""
        kept = []
        for outcome in batch:
            ctx = self._inflight.get(outcome.token)
            if ctx is not None and ctx._lost:
                self._inflight.pop(outcome.token, None)
                self._unsettled -= 1
                self._slot_freed()
            else:
                kept.append(outcome)
        return kept

    def _abandon(self, ctx: JobContext, reason: str) -> None:
        """Give up a job whose lease we no longer hold: stop its handler, send no outcome."""
        if ctx._lost:
            return
        ctx._lost = True
        ctx._cancel()
        fields = job_fields(ctx)
        fields["reason"] = reason
        if ctx._settling:
            # Its outcome waits to be sent or is on its way; if still waiting, drop it.
            logger.info("lease lost before the outcome was stored", extra=fields)
            self._outbox = self._without_lost(self._outbox)
            return
        logger.warning("lease lost: abandoning the job", extra=fields)
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
        self._stuck[job_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._stuck.get(job_id) is done:
                del self._stuck[job_id]

        task.add_done_callback(forget)

    def _request_cancel(self, ctx: JobContext) -> None:
        logger.info("cancellation requested", extra=job_fields(ctx))
        ctx._cancel()
        # A thread cannot be interrupted: it sees ``cancelled`` and its outcome
        # is then settled as it comes (a retry of a cancelled job ends CANCELLED).
        if ctx._handler.is_async and ctx._task is not None:
            ctx._task.cancel()

    # -- helpers ----------------------------------------------------------------

    async def _pause(self, failures: int) -> None:
        await asyncio.sleep(backoff_s(failures, self._settings.max_error_backoff_s))

    async def _await_claim_task(self) -> None:
        """Let an outstanding claim return so the jobs it took are released, not stranded.

        A claim once sent is never cancelled: the store may already have leased
        jobs to it, and only the reply tells us which. The claim is bounded by
        its wait and the source's own timeouts; a source hanging far beyond
        them is left behind, and its leases expire unconfirmed, which costs
        those jobs no attempt.
        """
        task = self._claim_task
        if task is None or task.done():
            return
        bound = self._claim_wait_ms / 1000 + max(
            _CLAIM_REPLY_BOUND_S, self._settings.shutdown_grace_s
        )
        done, _ = await asyncio.wait([task], timeout=bound)
        if not done:
            logger.warning(
                "an in-flight claim did not return; its leases will expire unconfirmed",
                extra={"waited_s": round(bound, 3)},
            )

    async def _wait_tasks(self, tasks: set[asyncio.Task[None]], deadline: float) -> None:
        loop = asyncio.get_running_loop()
        pending = {task for task in tasks if not task.done()}
        if not pending:
            return
        force = asyncio.ensure_future(self._force.wait())
        try:
            while pending and not force.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                done, _ = await asyncio.wait(
                    pending | {force}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                pending -= done
        finally:
            force.cancel()

    async def _wait_settled(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while self._inflight or self._unsettled:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._slots_freed.clear()
            try:
                await asyncio.wait_for(self._slots_freed.wait(), remaining)
            except TimeoutError:
                return


async def _wait_cancelled(tasks: list[asyncio.Task[None]], timeout_s: float = 2.0) -> None:
    """Wait a bounded time for cancelled tasks to end.

    A library awaited inside a task may swallow its cancellation (redis-py can
    during a command); ``stop`` must return anyway.
    """
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        logger.warning("a background task ignored cancellation", extra={"task": task.get_name()})


async def _call_middleware(middleware: Middleware, call_next: _Invoke, ctx: JobContext) -> Any:
    return await middleware(ctx, functools.partial(call_next, ctx))
