"""The unary calls of both clients, written once: what to send, and what the answer means.

Each of them is built here as a ``Unary``: the JobService method, its request,
how to read the response and which job it is about. ``JobClient`` carries it
over blocking ``grpc`` and ``AsyncJobClient`` over ``grpc.aio``, each through
``Attempts``, the one retry rule. So every signature, docstring and rule
exists once, and each client keeps its native transport: a blocking client
that hopped to an event-loop thread for every call measured about 20% slower
per enqueue than blocking ``grpc``.
"""

from __future__ import annotations

import builtins
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import grpc

from mpataki.jobqueue.v1 import jobqueue_pb2 as pb

from ._convert import (
    enqueue_jobs_request,
    enqueue_request,
    job_from_proto,
    list_request,
    page_from_proto,
    stats_from_proto,
)
from ._errors import JobAlreadyFinished, JobQueueClientError, error_from_rpc
from ._models import Job, JobPage, JobSpec, JobStatus, OnConflict, Payload, QueueStats, UniqueFor
from ._renamed import renamed
from ._retry import RetryPolicy, is_retryable
from ._tracing import SendSpan

R = TypeVar("R")

DEFAULT_PAGE_SIZE = 100

# From the user's call: renamed <- the builder here <- the client's method <- the user.
_CALLER = 4


@dataclass(frozen=True, slots=True)
class Unary(Generic[R]):
    """One unary call, ready for either transport.

    Attributes:
        method: the JobService method's name (``"EnqueueJob"``).
        request: its request message.
        read: turns the response into what the client's method returns.
        job_id: the job the call is about, for the errors that name it.
        recheck: after a retried call failed with this error, the call whose
            answer decides whether the first attempt had succeeded after all.
        stub: the generated stub class of the method's service; None is JobService.
        refine: turns the final error into a more specific one (a schedule's
            NOT_FOUND into ``ScheduleNotFound``).
        retryable: False for a call that a lost reply makes unsafe to repeat
            (one with no idempotency key that creates something).
    """

    method: str
    request: Any
    read: Callable[[Any], R]
    job_id: str | None = None
    recheck: Callable[[JobQueueClientError], Unary[R] | None] | None = None
    stub: type[Any] | None = None
    refine: Callable[[JobQueueClientError], JobQueueClientError] | None = None
    retryable: bool = True


class Attempts(Generic[R]):
    """The retries of one call: UNAVAILABLE is retried with backoff, within the policy.

    Every call routed here is safe to repeat (see ``RetryPolicy``) unless it says
    otherwise (``Unary.retryable``): those fail at once.
    """

    def __init__(self, policy: RetryPolicy, call: Unary[R]) -> None:
        self.policy = policy
        self.call = call
        self.count = 0

    def failed(self, error: grpc.RpcError) -> float | Unary[R]:
        """The pause before the next attempt, or the call whose answer to return instead.

        Raises:
            JobQueueClientError: the client's error for ``error``, when it is final.
        """
        self.count += 1
        if self.call.retryable and is_retryable(error) and self.count <= self.policy.max_retries:
            return self.policy.backoff_s(self.count)
        final = error_from_rpc(error, job_id=self.call.job_id)
        if self.call.refine is not None:
            final = self.call.refine(final)
        if self.count > 1 and self.call.recheck is not None:
            instead = self.call.recheck(final)
            if instead is not None:
                return instead
        raise final from error


def method_signature(build: Callable[..., Any], returns: Callable[[Any], Any]) -> inspect.Signature:
    """What ``inspect`` and ``help()`` show for a client's method made from ``build``.

    ``self`` first, then ``build``'s parameters; the return annotation is
    ``returns`` applied to what ``build``'s call reads (``Job`` for ``Unary[Job]``).
    """
    signature = inspect.signature(build)
    built = typing.get_type_hints(build)["return"]
    answer = typing.get_args(built)[0] if typing.get_args(built) else Job  # a Listing: Jobs
    first = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return signature.replace(
        parameters=[first, *signature.parameters.values()], return_annotation=returns(answer)
    )


def _job(response: Any) -> Job:
    return job_from_proto(response.job)


def enqueue(
    type: str,
    payload: Payload = None,
    *,
    run_at: datetime | int | None = None,
    delay_s: timedelta | float | None = None,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
    delay: timedelta | float | None = None,
    unique_key: str | None = None,
    on_conflict: OnConflict | str | None = None,
    unique_for: UniqueFor | None = None,
    headers: Mapping[str, str] | None = None,
    priority: int = 0,
    limit_key: str | None = None,
) -> Unary[Job]:
    """Submit one job.

    Args:
        type: which handler runs it (1-128 characters of ``[A-Za-z0-9_.:-]``).
        payload: bytes as they are, str as UTF-8, anything else as compact JSON.
        run_at: when it becomes due: a datetime or epoch milliseconds.
        delay_s: or how long from now: seconds or a timedelta.
        max_attempts: runs before it ends FAILED; unset leaves it to the handler.
        idempotency_key: a repeated enqueue with the same key returns the job
            first stored under it. A fresh key is generated when omitted.
        delay: deprecated name of ``delay_s``.
        unique_key: a business rule, unlike ``idempotency_key``: while a job
            holding this key is within ``unique_for``, another enqueue with
            it gets ``on_conflict`` (up to 256 characters, per job type).
        on_conflict: ``OnConflict`` or its value; ``"return_existing"`` by default.
        unique_for: ``"pending"``, ``"active"`` (the default) or a
            ``timedelta`` debounce window.
        headers: strings carried with the job to its handler (at most 32;
            keys of letters, digits, ``.``, ``_``, ``-``; values up to 1,024
            bytes). With OpenTelemetry installed, the ``send`` span's
            ``traceparent`` is added, so the worker's run joins the trace.
        priority: -100 to 100 (0 by default). Among due jobs of its type a
            higher priority is handed out first, first come first served
            within one; a job scheduled for later takes its place when due.
        limit_key: a tenant such as a customer id (1-128 printable
            characters, no spaces): the type's per-key limits count each key
            apart, and its keys take turns, so one key's backlog cannot
            starve another. Not with a ``priority``.

    Returns:
        The stored job (PENDING), or the holder of ``unique_key``.

    Raises:
        InvalidJob: the server rejected an argument.
        QueueFull: the server is at capacity.
        ServerUnavailable: the server could not be reached, even after retries.
        JobAlreadyExists: ``unique_key`` is held and ``on_conflict`` rejects.
        ValueError: both ``run_at`` and ``delay_s`` were given.
    """
    delay_s = renamed(
        "delay", delay, "delay_s", delay_s, given=delay_s is not None, stacklevel=_CALLER
    )
    send = SendSpan(type, headers)
    spec = JobSpec(
        type,
        payload,
        run_at,
        delay_s,
        max_attempts,
        idempotency_key,
        unique_key,
        on_conflict,
        unique_for,
        send.headers or None,
        priority,
        limit_key,
    )
    return Unary(
        "EnqueueJob", enqueue_request(spec), send.reading(_job), refine=send.refining(None)
    )


def _jobs(response: Any) -> builtins.list[Job]:
    return [job_from_proto(job) for job in response.jobs]


def enqueue_many(
    jobs: Iterable[JobSpec], *, idempotency_key: str | None = None
) -> Unary[builtins.list[Job]]:
    """Submit a batch in one call, atomically: one invalid job rejects them all.

    The batch carries one idempotency key, ``idempotency_key`` or a fresh
    one, so a retried call returns the jobs the first stored instead of
    storing them twice; jobs may carry their own keys too. The server
    bounds a batch's size (10,000 jobs by default); split bigger inputs
    into several calls.

    Returns:
        The stored jobs, in the order given.

    Raises:
        InvalidJob: a job was rejected; the message names it (``jobs[3].type: ...``).
    """
    return Unary("EnqueueJobs", enqueue_jobs_request(jobs, idempotency_key), _jobs)


def get(job_id: str) -> Unary[Job]:
    """The job as it is now.

    Raises:
        JobNotFound: no such job, or its retention ran out.
        InvalidJob: ``job_id`` is not a job id.
    """
    return Unary("GetJob", pb.GetJobRequest(id=job_id), _job, job_id)


def list_page(
    type: str | None = None,
    status: JobStatus | str | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    page_token: str = "",
) -> Unary[JobPage]:
    """One page of jobs, optionally of one type and status.

    Pass the returned ``next_page_token`` to get the next page; it is empty
    on the last page. ``list`` does this for you.
    """
    return Unary("ListJobs", list_request(type, status, page_size, page_token), page_from_proto)


def stats() -> Unary[QueueStats]:
    """Counts of jobs per type and status, and their totals.

    ``scheduled`` counts the PENDING jobs due later; ``pending`` those due now.
    """
    return Unary("GetQueueStats", pb.GetQueueStatsRequest(), stats_from_proto)


def cancel(job_id: str) -> Unary[Job]:
    """Cancel a PENDING job, or ask the worker running it to stop.

    Returns:
        The job after the request: CANCELLED, or RUNNING with ``cancel_requested``.

    Raises:
        JobNotFound: no such job.
        JobAlreadyFinished: the job had already finished.
    """

    def recheck(error: JobQueueClientError) -> Unary[Job] | None:
        # Retrying a cancel is safe, but when the first attempt's reply was
        # lost the retry finds the job CANCELLED by that very attempt; that is
        # the success the caller asked for, not an error.
        if not isinstance(error, JobAlreadyFinished):
            return None

        def cancelled(response: Any) -> Job:
            job = _job(response)
            if job.status is not JobStatus.CANCELLED:
                raise error
            return job

        return Unary("GetJob", pb.GetJobRequest(id=job_id), cancelled, job_id)

    return Unary("CancelJob", pb.CancelJobRequest(id=job_id), _job, job_id, recheck)


class Listing:
    """The pages ``list`` walks through: the next call to make, and the jobs to hand out."""

    def __init__(
        self,
        type: str | None,
        status: JobStatus | str | None,
        page_size: int,
        limit: int | None,
    ) -> None:
        self._next: Unary[JobPage] | None = list_page(type, status, page_size=page_size)
        self._type, self._status, self._page_size = type, status, page_size
        self._left = limit

    def next_call(self) -> Unary[JobPage] | None:
        """The call that fetches the next page; None when the listing is done."""
        return self._next

    def take(self, page: JobPage) -> tuple[Job, ...]:
        """The jobs of ``page`` to hand out, after which ``next_call`` moves on."""
        jobs = page.jobs if self._left is None else page.jobs[: self._left]
        if self._left is not None:
            self._left -= len(jobs)
        self._next = None
        if page.next_page_token and self._left != 0:
            self._next = list_page(
                self._type,
                self._status,
                page_size=self._page_size,
                page_token=page.next_page_token,
            )
        return jobs


def listing(
    type: str | None = None,
    status: JobStatus | str | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    limit: int | None = None,
) -> Listing:
    """Every matching job, fetched a page at a time as you iterate.

    Order: by status, then type, then due time (see the API docs). Jobs that
    change status while you page may be missed or seen twice.

    Args:
        type: only jobs of this type.
        status: only jobs in this status (a ``JobStatus`` or its name).
            ``"scheduled"`` is not a status: scheduled jobs are PENDING ones due later.
        page_size: jobs per round trip (the server caps it).
        limit: stop after this many jobs.
    """
    return Listing(type, status, page_size, limit)
