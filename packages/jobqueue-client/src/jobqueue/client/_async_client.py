"""``AsyncJobClient``: the jobqueue API for asyncio programs, over ``grpc.aio``.

Its calls are the ones in ``_calls`` (shared with ``JobClient``), carried over
``grpc.aio``; only the life cycle, the transport and the streaming ``watch``
are written here.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import grpc

from mpataki.jobqueue.v1 import jobqueue_pb2_grpc as pb_grpc

from . import _admin_calls as admin
from . import _calls as calls
from . import _gate_calls as gates
from . import _presence_calls as presence
from . import _schedule_calls as schedules
from ._errors import WaitTimeout
from ._models import Job
from ._options import OPTIONS_DOC, ClientOptions
from ._watch import WatchState, watch_timeout_s

P = ParamSpec("P")
R = TypeVar("R")


def _awaitable(
    build: Callable[P, calls.Unary[R]],
) -> Callable[Concatenate[AsyncJobClient, P], Coroutine[Any, Any, R]]:
    """An ``AsyncJobClient`` method that makes the call ``build`` describes."""

    @functools.wraps(build)
    async def method(self: AsyncJobClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._unary(build(*args, **kwargs))

    method.__signature__ = calls.method_signature(build, lambda answer: answer)  # type: ignore[attr-defined]
    return method


def _paged(
    build: Callable[P, calls.Listing],
) -> Callable[Concatenate[AsyncJobClient, P], AsyncIterator[Job]]:
    """An ``AsyncJobClient`` method that walks the pages of the listing ``build`` describes."""

    @functools.wraps(build)
    async def method(
        self: AsyncJobClient, /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncIterator[Job]:
        listing = build(*args, **kwargs)
        while (call := listing.next_call()) is not None:
            for job in listing.take(await self._unary(call)):
                yield job

    method.__signature__ = calls.method_signature(build, AsyncIterator.__class_getitem__)  # type: ignore[attr-defined]
    return method


def _awaitable_run(
    build: Callable[P, admin.BulkRun],
) -> Callable[Concatenate[AsyncJobClient, P], Coroutine[Any, Any, admin.BulkTotals]]:
    """An ``AsyncJobClient`` method that makes the calls of the run ``build`` describes, in turn."""

    @functools.wraps(build)
    async def method(
        self: AsyncJobClient, /, *args: P.args, **kwargs: P.kwargs
    ) -> admin.BulkTotals:
        run = build(*args, **kwargs)
        while (call := run.next_call()) is not None:
            run.take(await self._unary(call))
        return run.totals

    method.__signature__ = calls.method_signature(build, lambda _: admin.BulkTotals)  # type: ignore[attr-defined]
    return method


class AsyncJobClient(ClientOptions):
    __doc__ = (
        """Submit, inspect, cancel and follow jobs from asyncio code.

    The channel opens on first use, in the running event loop; close the client
    with ``await client.close()`` or use it as ``async with AsyncJobClient() as client``.
    """
        + OPTIONS_DOC
        + """
    Example:
        >>> async with AsyncJobClient(target="localhost:8080") as client:
        ...     job = await client.enqueue("send_email", {"to": "a@example.com"})
        ...     done = await client.wait(job.id, timeout_s=30)
    """
    )

    _channel: grpc.aio.Channel | None = None
    _stub: pb_grpc.JobServiceAsyncStub | None = None

    # -- life cycle ---------------------------------------------------------------

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled. Closing twice is harmless."""
        self._closed = True
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the calls (documented in _calls) -------------------------------------------

    enqueue = _awaitable(calls.enqueue)
    enqueue_many = _awaitable(calls.enqueue_many)
    get = _awaitable(calls.get)
    list_page = _awaitable(calls.list_page)
    stats = _awaitable(calls.stats)
    cancel = _awaitable(calls.cancel)
    list = _paged(calls.listing)

    # -- pausing job types (documented in _gate_calls) ------------------------------

    pause_type = _awaitable(gates.pause_type)
    resume_type = _awaitable(gates.resume_type)
    set_type_limits = _awaitable(gates.set_type_limits)
    type_limits = _awaitable(gates.type_limits)

    # -- worker presence (documented in _presence_calls) ---------------------------

    list_workers = _awaitable(presence.list_workers)

    # -- operators' job actions (documented in _admin_calls) -----------------------

    retry_job = _awaitable(admin.retry_job)
    delete_job = _awaitable(admin.delete_job)
    bulk_page = _awaitable(admin.bulk_page)

    bulk_jobs = _awaitable_run(admin.bulk_run)

    # -- recurring schedules (documented in _schedule_calls) -------------------------

    create_schedule = _awaitable(schedules.create_schedule)
    list_schedules = _awaitable(schedules.list_schedules)
    get_schedule = _awaitable(schedules.get_schedule)
    pause_schedule = _awaitable(schedules.pause_schedule)
    resume_schedule = _awaitable(schedules.resume_schedule)
    trigger_schedule = _awaitable(schedules.trigger_schedule)
    delete_schedule = _awaitable(schedules.delete_schedule)

    # -- following ------------------------------------------------------------------

    # The timeout bounds a wait that spans several streams and reconnections, and
    # mirrors JobClient's signature; asyncio.timeout around it would work too.
    async def watch(
        self,
        job_id: str,
        *,
        timeout_s: float | timedelta | None = None,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109
    ) -> AsyncIterator[Job]:
        """The job now, then again on every change, ending with its terminal state.

        Quick successive changes may arrive as one. The stream is resumed when
        the connection drops (with the retry policy's backoff).

        Args:
            job_id: the job to follow.
            timeout_s: give up after this long (seconds or a timedelta); None waits forever.
            timeout: deprecated name of ``timeout_s``.

        Raises:
            WaitTimeout: the timeout passed before the job finished.
            JobNotFound: no such job.
        """
        loop = asyncio.get_running_loop()
        timeout_s = watch_timeout_s(timeout_s, timeout)
        state = WatchState(job_id, self._conn, timeout_s, loop.time())
        while not state.finished:
            call = state.open(self._jobs().WatchJob, loop.time())
            try:
                async for response in call:
                    yield state.seen(response)
                    if state.finished:
                        break
                pause = state.stream_ended(loop.time())
            except grpc.RpcError as error:
                pause = state.failed(error, loop.time())
            finally:
                call.cancel()
            await asyncio.sleep(pause)

    async def wait(
        self,
        job_id: str,
        timeout_s: float | timedelta | None = None,
        *,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 - see watch
    ) -> Job:
        """Wait until the job is COMPLETED, FAILED or CANCELLED, and return it.

        Built on the server's WatchJob stream: no polling, the answer arrives
        as soon as the job finishes.

        Raises:
            WaitTimeout: ``timeout_s`` (seconds or a timedelta) passed first.
            JobNotFound: no such job.
        """
        last: Job | None = None
        async for job in self.watch(job_id, timeout_s=watch_timeout_s(timeout_s, timeout)):
            last = job
        if last is None:  # watch only ends normally after a terminal state
            raise WaitTimeout(job_id)
        return last

    # -- plumbing -------------------------------------------------------------------

    def _jobs(self) -> pb_grpc.JobServiceAsyncStub:
        self._check_open()
        if self._stub is None:
            self._channel = self._conn.aio_channel()
            self._stub = pb_grpc.JobServiceStub(self._channel)
        return self._stub

    def _service(self, stub: type[Any] | None) -> Any:
        """The stub of the call's service on this client's channel; None is JobService."""
        jobs = self._jobs()
        # Another service's stub is a few method handles on the one channel: cheap to
        # make per call, and never left holding a channel that close() has closed.
        return jobs if stub is None else stub(self._channel)

    async def _unary(self, call: calls.Unary[R]) -> R:
        """``call`` with a deadline, retried with backoff while UNAVAILABLE (see ``Attempts``)."""
        method = getattr(self._service(call.stub), call.method)
        conn = self._conn
        attempts: calls.Attempts[R] | None = None  # made by the first failure only
        while True:
            try:
                response = await method(
                    call.request, timeout=conn.timeout_s, metadata=conn.metadata
                )
            except grpc.RpcError as error:
                if attempts is None:
                    attempts = calls.Attempts(conn.retry, call)
                step = attempts.failed(error)
            else:
                return call.read(response)
            if isinstance(step, calls.Unary):
                return await self._unary(step)
            await asyncio.sleep(step)
