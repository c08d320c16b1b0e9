"""The Worker: the life-cycle face over the registry, the runner and the loops."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from jobqueue.domain import RetryPolicy

from ._assembly import MetricsWanted, Parts, assemble, worker_version
from ._context import JobContext
from ._errors import WorkerStateError
from ._handler import Handler, HandlerFunc
from ._logging import logger
from ._registry import HandlerRegistry, Middleware, timeout_alias
from ._settings import WorkerSettings
from ._shutdown import await_claim, wait_cancelled, wait_settled, wait_tasks
from ._signals import run_until_signalled
from ._source import JobSource
from ._sources import ServerOptions, SourceSpec, source_spec
from ._state import InFlight

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ._metrics import WorkerMetrics

_F = TypeVar("_F", bound=HandlerFunc)
_CLAIM_REPLY_BOUND_S = 10.0
"""How long ``stop`` waits for an in-flight claim beyond its wait (GrpcSource's default timeout)."""


class Worker:
    """Runs registered handlers for jobs taken from Redis or from a jobqueue server.

    A worker claims only the job types it has handlers for, in batches of up to
    its free slots; when there is nothing to do it waits inside the store until
    a job is due, so a job starts within milliseconds. Outcomes of many
    handlers are stored in one call, and one heartbeat renews every lease (see
    ``LeaseKeeper`` for confirmation, fencing and immediate cancels).

    Where the jobs come from is one of: ``redis_url`` (the direct path: this
    process runs the store's scripts), ``server`` (through the server's
    ``WorkerService``), or an explicit ``source``. A worker given none gets
    one from the ``jobqueue worker`` command. A source the worker builds is
    its own: connected on first use and closed by ``stop``.

    Args:
        source: an explicit ``JobSource`` (``StoreSource`` or ``GrpcSource``).
        redis_url: take jobs straight from Redis: any URL ``jobqueue.redis``
            reads (``redis://``, ``rediss://``, ``redis+sentinel://``,
            ``redis+cluster://``).
        key_prefix: the Redis key prefix of the queue (default ``jq``).
        server: take jobs through a server, ``host:port``.
        settings: every tunable; the keyword arguments below override its fields.
        concurrency: jobs in flight at once.
        lease_ms: lease length; a crashed worker's jobs return after it.
        shutdown_grace_s: how long ``stop`` lets running jobs finish.
        store_traceback: store a failed job's traceback in its ``last_error``
            (by default it holds the error's type and message only).
        metrics_registry: a ``prometheus_client.CollectorRegistry`` to put the
            worker's metrics in (handler durations, outcomes, queue wait, end
            to end, slots), served with the application's own.
        metrics_port: serve the worker's metrics over HTTP on this port (0: a
            free one) at ``metrics_host`` (default loopback).
        **server_options: with ``server``, how to reach it: ``auth_token``,
            ``tls``, ``ca_cert``, ``client_cert``, ``client_key`` and
            ``tls_server_name``, as the client SDK takes them (``ServerOptions``).

    Example:
        >>> worker = Worker(redis_url="redis://127.0.0.1:6379/0", concurrency=50)
        >>> @worker.handler("send_email", max_attempts=5, timeout_s=30)
        ... async def send_email(job: JobContext) -> dict[str, str]:
        ...     return {"sent_to": job.json()["to"]}
        >>> worker.run()
    """

    def __init__(
        self,
        source: JobSource | None = None,
        *,
        redis_url: str | None = None,
        key_prefix: str | None = None,
        server: str | None = None,
        settings: WorkerSettings | None = None,
        concurrency: int | None = None,
        lease_ms: int | None = None,
        shutdown_grace_s: float | None = None,
        store_traceback: bool | None = None,
        metrics_registry: CollectorRegistry | None = None,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        **server_options: Unpack[ServerOptions],
    ) -> None:
        self._settings = settings or WorkerSettings()
        self._override(
            concurrency=concurrency,
            lease_ms=lease_ms,
            shutdown_grace_s=shutdown_grace_s,
            store_traceback=store_traceback,
        )
        self._source_spec = source_spec(source, redis_url, key_prefix, server, server_options)
        self._registry = HandlerRegistry()
        self._state = InFlight()
        self._parts: Parts | None = None
        self._started = False
        self._started_at = 0.0
        self._stopping = False
        self._stopped = asyncio.Event()
        self._force = asyncio.Event()
        # Prometheus metrics (_metrics.py): into the user's registry, or one of
        # our own served on metrics_port; neither given, none are kept.
        self._metrics_wanted = MetricsWanted(metrics_registry, metrics_port, metrics_host)
        self.metrics: WorkerMetrics | None = None
        """The worker's Prometheus metrics, once started with a registry or a port."""

    # -- registration -----------------------------------------------------------

    @property
    def settings(self) -> WorkerSettings:
        return self._settings

    @property
    def types(self) -> tuple[str, ...]:
        """The job types this worker claims: exactly those it has handlers for."""
        return tuple(self._registry.handlers)

    @property
    def inflight(self) -> int:
        """Jobs claimed and not yet settled."""
        return len(self._state.jobs)

    # Read by tests that look inside: the handlers as registered, the jobs in flight.
    @property
    def _handlers(self) -> dict[str, Handler]:
        return self._registry.handlers

    @property
    def _inflight(self) -> dict[str, JobContext]:
        return self._state.jobs

    def handler(
        self,
        job_type: str,
        *,
        max_attempts: int | None = None,
        timeout_s: float | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> Callable[[_F], _F]:
        """Register the decorated function as the handler of ``job_type``.

        Args:
            job_type: the job type it handles.
            max_attempts: attempts of jobs whose producer left the number open.
            timeout_s: seconds an attempt may run before it is cancelled and
                counted as a failure (``HandlerTimeout``). An async handler is
                cancelled. A thread handler cannot be killed: its ``cancelled``
                flag is set, and it keeps its slot and its lease (still renewed)
                until the function returns; only then is the attempt failed or
                retried, so two runs of one job never overlap.
            retry: backoff between attempts; the worker's default otherwise.
            timeout: deprecated name of ``timeout_s``.

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
        seconds = timeout_alias(timeout_s, timeout)

        def register(func: _F) -> _F:
            self._registry.register(
                job_type,
                func,
                self._settings,
                max_attempts=max_attempts,
                timeout_s=seconds,
                retry=retry,
            )
            return func

        return register

    def register(
        self,
        job_type: str,
        func: HandlerFunc,
        *,
        max_attempts: int | None = None,
        timeout_s: float | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        """Register ``func`` as the handler of ``job_type``; see ``handler``."""
        self._registry.register(
            job_type,
            func,
            self._settings,
            max_attempts=max_attempts,
            timeout_s=timeout_alias(timeout_s, timeout),
            retry=retry,
        )

    def add_middleware(self, middleware: Middleware) -> None:
        """Wrap every job in ``middleware``; the first added is the outermost.

        Use it for tracing, metrics or context propagation. It runs on the
        event loop, also around thread handlers.
        """
        self._registry.add_middleware(middleware)

    # -- life cycle -------------------------------------------------------------

    def run(self, *, uvloop: bool | None = None) -> None:
        """Run until SIGTERM or SIGINT, then stop gracefully; blocks the calling thread.

        A signal sent to the whole process group (``timeout``, systemd, ``uv
        run``, Ctrl-C) arrives twice within milliseconds and counts as one.
        A second signal more than a second after the first skips the rest of
        the grace period: running jobs are cancelled at once and released to
        other workers. The loop is uvloop where it is installed (it drains
        faster, see docs/benchmarks.md), unless ``uvloop`` says otherwise:
        True requires it, False refuses it.
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
            runner.run(
                run_until_signalled(
                    self.start, self.stop, self._force, self._settings.shutdown_grace_s
                )
            )

    async def start(self) -> None:
        """Start claiming and running jobs in the background of the running event loop."""
        if self._started:
            raise WorkerStateError("the worker was already started")
        handlers = self._registry.handlers
        if not handlers:
            raise WorkerStateError("register at least one handler before starting the worker")
        if self._source_spec is None:
            raise WorkerStateError(
                "the worker has no job source: give Worker(redis_url=...) or "
                "Worker(server=...), or run it with `jobqueue worker MODULE:ATTR --redis-url URL`"
            )
        source = self._source_spec.build()
        self._started = True
        self._started_at = time.monotonic()
        self._registry.frozen = True
        settings = self._settings
        parts = assemble(source, settings, self._registry, self._state, self._metrics_wanted)
        self._parts = parts
        self.metrics = parts.loops.runner.metrics
        version = worker_version()
        logger.info(
            "worker started: source %s, types %s, concurrency %d, lease %d ms, jobqueue-worker %s",
            self._source_spec.label,
            ", ".join(self.types),
            settings.concurrency,
            settings.lease_ms,
            version,
            extra={
                "source": self._source_spec.label,
                "job_types": list(self.types),
                "concurrency": settings.concurrency,
                "version": version,
            },
        )

    def _serve_metrics(self, *, host: str, port: int) -> None:
        """The worker command's --metrics-port: like ``Worker(metrics_port=...)``."""
        self._metrics_wanted = MetricsWanted(self._metrics_wanted.registry, port, host)

    async def stop(self, *, grace_s: float | None = None) -> None:
        """Stop gracefully: stop claiming, let running jobs finish, release the rest.

        A claim already sent is not cancelled but awaited, and the jobs it
        returns are released untried. Jobs still running after ``grace_s``
        (default: the settings') are cancelled and released, so another worker
        takes them at once. Returns when every outcome is stored (or the source
        stayed unreachable for the grace period; those jobs come back when
        their leases expire). The source is closed (a store the worker built
        from ``redis_url`` too).
        """
        if not self._started:
            return
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        parts, state = self._parts, self._state
        assert parts is not None
        loops = parts.loops
        leases = loops.leases
        loops.stopping = True
        loop = asyncio.get_running_loop()
        grace = self._settings.shutdown_grace_s if grace_s is None else grace_s
        state.slot_freed()
        bound_s = loops.claim_wait_ms / 1000 + max(
            _CLAIM_REPLY_BOUND_S, self._settings.shutdown_grace_s
        )
        await await_claim(parts.claim_task, bound_s)

        running = {ctx._task for ctx in state.jobs.values() if ctx._task is not None}
        await wait_tasks(running, loop.time() + grace, self._force)
        unfinished = [
            ctx
            for ctx in state.jobs.values()
            if ctx._task is not None and not ctx._task.done() and not ctx._settling
        ]
        for ctx in unfinished:
            ctx._shutdown = True
            ctx._cancel()
            assert ctx._task is not None
            ctx._task.cancel()
        if unfinished:
            await asyncio.wait([ctx._task for ctx in unfinished if ctx._task is not None])
            logger.info(
                "released %d jobs still running after the %.3g s grace period",
                len(unfinished),
                grace,
                extra={"count": len(unfinished)},
            )

        await wait_settled(state, loop.time() + max(grace, 1.0))
        loops.closing = True
        leases.closing = True
        for task in parts.tasks:
            task.cancel()
        await wait_cancelled(parts.tasks)
        left = max(len(state.jobs), state.unsettled)
        if left:
            logger.warning(
                "%d outcomes could not be stored; those jobs return when their leases expire",
                left,
                extra={"count": left},
            )
        try:
            if parts.presence is not None:
                await parts.presence.leave()
            if loops.runner.progress is not None:
                await loops.runner.progress.close()
            await loops.source.close()
        finally:
            if parts.pool is not None:
                # A thread handler cannot be interrupted: do not wait for it.
                parts.pool.shutdown(wait=False, cancel_futures=True)
            if self.metrics is not None:
                self.metrics.close()
            self._stopped.set()
            logger.info(
                "worker stopped: %d outcomes stored in %.1f s, %d left to their leases",
                state.settled,
                time.monotonic() - self._started_at,
                left,
                extra={"settled": state.settled, "unsettled": left},
            )

    # -- used by the worker command ----------------------------------------------

    def _override(self, **fields: Any) -> None:
        """Replace settings fields that are not None (constructor and command options)."""
        given = {name: value for name, value in fields.items() if value is not None}
        if given:
            self._settings = dataclasses.replace(self._settings, **given)

    def _use_source(self, spec: SourceSpec) -> None:
        if self._started:
            raise WorkerStateError("the source cannot change once the worker started")
        self._source_spec = spec
