"""``JobClient``: the jobqueue API for synchronous code (Django, Flask, scripts).

Its calls are the ones in ``_calls`` (shared with ``AsyncJobClient``), carried
over blocking ``grpc``; only the life cycle, the transport and the streaming
``watch`` are written here.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
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
from ._models import Job, QueueStats
from ._options import OPTIONS_DOC, ClientOptions
from ._watch import WatchState, last_state, watch_timeout_s

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(build: Callable[P, calls.Unary[R]]) -> Callable[Concatenate[JobClient, P], R]:
    """A ``JobClient`` method that makes the call ``build`` describes and returns its answer."""

    @functools.wraps(build)
    def method(self: JobClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._unary(build(*args, **kwargs))

    method.__signature__ = calls.method_signature(build, lambda answer: answer)  # type: ignore[attr-defined]
    return method


def _paged(build: Callable[P, calls.Listing]) -> Callable[Concatenate[JobClient, P], Iterator[Job]]:
    """A ``JobClient`` method that walks the pages of the listing ``build`` describes."""

    @functools.wraps(build)
    def method(self: JobClient, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[Job]:
        return self._pages(build(*args, **kwargs))

    method.__signature__ = calls.method_signature(build, Iterator.__class_getitem__)  # type: ignore[attr-defined]
    return method


def _blocking_run(
    build: Callable[P, admin.BulkRun],
) -> Callable[Concatenate[JobClient, P], admin.BulkTotals]:
    """A ``JobClient`` method that makes the calls of the run ``build`` describes, in turn."""

    @functools.wraps(build)
    def method(self: JobClient, /, *args: P.args, **kwargs: P.kwargs) -> admin.BulkTotals:
        run = build(*args, **kwargs)
        while (call := run.next_call()) is not None:
            run.take(self._unary(call))
        return run.totals

    method.__signature__ = calls.method_signature(build, lambda _: admin.BulkTotals)  # type: ignore[attr-defined]
    return method


class JobClient(ClientOptions):
    __doc__ = (
        """Submit, inspect, cancel and follow jobs from synchronous code.

    One client is safe to share between threads; it holds one channel, which
    connects on the first call. Close it with ``client.close()``, or use it as
    ``with JobClient() as client``.
    """
        + OPTIONS_DOC
        + """
    Example:
        >>> with JobClient(target="localhost:8080") as client:
        ...     job = client.enqueue("send_email", {"to": "a@example.com"})
        ...     done = client.wait(job.id, timeout_s=30)
    """
    )

    _channel: grpc.Channel | None = None
    _stub: pb_grpc.JobServiceStub | None = None
    _lock = threading.Lock()  # guards only the first call's opening of the channel

    # -- life cycle ---------------------------------------------------------------

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled. Closing twice is harmless."""
        with self._lock:
            self._closed = True
            channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the calls (documented in _calls) -------------------------------------------

    enqueue = _blocking(calls.enqueue)
    enqueue_many = _blocking(calls.enqueue_many)
    get = _blocking(calls.get)
    list_page = _blocking(calls.list_page)
    list = _paged(calls.listing)

    # Written out, as it takes no arguments: the plain method is as short as a binding.
    def stats(self) -> QueueStats:
        """Counts of jobs per type and status, and their totals (scheduled: PENDING, due later)."""
        return self._unary(calls.stats())

    cancel = _blocking(calls.cancel)

    # -- pausing job types (documented in _gate_calls) ------------------------------

    pause_type = _blocking(gates.pause_type)
    resume_type = _blocking(gates.resume_type)
    set_type_limits = _blocking(gates.set_type_limits)
    type_limits = _blocking(gates.type_limits)

    # -- worker presence (documented in _presence_calls) ---------------------------

    list_workers = _blocking(presence.list_workers)

    # -- operators' job actions (documented in _admin_calls) -----------------------

    retry_job = _blocking(admin.retry_job)
    delete_job = _blocking(admin.delete_job)
    bulk_page = _blocking(admin.bulk_page)

    bulk_jobs = _blocking_run(admin.bulk_run)

    # -- recurring schedules (documented in _schedule_calls) -------------------------

    create_schedule = _blocking(schedules.create_schedule)
    list_schedules = _blocking(schedules.list_schedules)
    get_schedule = _blocking(schedules.get_schedule)
    pause_schedule = _blocking(schedules.pause_schedule)
    resume_schedule = _blocking(schedules.resume_schedule)
    trigger_schedule = _blocking(schedules.trigger_schedule)
    delete_schedule = _blocking(schedules.delete_schedule)

    # -- following ------------------------------------------------------------------

    def watch(
        self,
        job_id: str,
        *,
        timeout_s: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
    ) -> Iterator[Job]:
        """``AsyncJobClient.watch`` as a blocking iterator: the job's states until it finishes."""
        timeout_s = watch_timeout_s(timeout_s, timeout)
        state = WatchState(job_id, self._conn, timeout_s, time.monotonic())
        while not state.finished:
            call = state.open(self._jobs().WatchJob, time.monotonic())
            try:
                yield from state.follow(call)
                pause = state.stream_ended(time.monotonic())
            except grpc.RpcError as error:
                pause = state.failed(error, time.monotonic())
            finally:
                call.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leaves it untyped
            time.sleep(pause)

    def wait(
        self,
        job_id: str,
        timeout_s: float | timedelta | None = None,
        *,
        timeout: float | timedelta | None = None,
    ) -> Job:
        """``AsyncJobClient.wait``, blocking: the job once COMPLETED, FAILED or CANCELLED."""
        return last_state(job_id, self.watch(job_id, timeout_s=watch_timeout_s(timeout_s, timeout)))

    # -- plumbing -------------------------------------------------------------------

    def _jobs(self) -> pb_grpc.JobServiceStub:
        stub = self._stub
        if stub is not None:
            return stub
        with self._lock:
            self._check_open()
            if self._stub is None:
                self._channel = self._conn.sync_channel()
                self._stub = pb_grpc.JobServiceStub(self._channel)
            return self._stub

    def _service(self, stub: type[Any] | None) -> Any:
        """The stub of the call's service on this client's channel; None is JobService."""
        jobs = self._jobs()
        # Another service's stub is a few method handles on the one channel: cheap to
        # make per call, and never left holding a channel that close() has closed.
        return jobs if stub is None else stub(self._channel)

    def _pages(self, listing: calls.Listing) -> Iterator[Job]:
        while (call := listing.next_call()) is not None:
            yield from listing.take(self._unary(call))

    def _unary(self, call: calls.Unary[R]) -> R:
        """``call`` with a deadline, retried with backoff while UNAVAILABLE (see ``Attempts``)."""
        method = getattr(self._service(call.stub), call.method)
        attempts = calls.Attempts(self._conn.retry, call)
        while True:
            try:
                return call.read(
                    method(call.request, timeout=self._conn.timeout_s, metadata=self._conn.metadata)
                )
            except grpc.RpcError as error:
                step = attempts.failed(error)
            if isinstance(step, calls.Unary):
                return self._unary(step)
            time.sleep(step)
