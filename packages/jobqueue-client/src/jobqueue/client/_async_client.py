"""``AsyncJobClient``: the jobqueue API for asyncio programs, over ``grpc.aio``."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self, TypeVar

import grpc

from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc as pb_grpc

from ._channel import DEFAULT_TIMEOUT_S, PathLike, connection
from ._convert import (
    enqueue_jobs_request,
    enqueue_request,
    job_from_proto,
    list_request,
    page_from_proto,
    stats_from_proto,
)
from ._errors import JobAlreadyFinished, JobQueueClientError, WaitTimeout, error_from_rpc
from ._models import Job, JobPage, JobSpec, JobStatus, Payload, QueueStats
from ._retry import DEFAULT_RETRY, RetryPolicy, is_retryable
from ._watch import WatchState, timeout_seconds

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

DEFAULT_PAGE_SIZE = 100


class AsyncJobClient:
    """Submit, inspect, cancel and follow jobs from asyncio code.

    The channel opens on first use, in the running event loop; close the client
    with ``await client.close()`` or use it as ``async with AsyncJobClient() as client``.

    Every call has a deadline (``timeout``). Calls that are safe to repeat are
    retried with backoff when the server is unavailable; enqueues are among
    them because each carries an idempotency key (generated per call unless
    given), so a retry after a lost reply never creates a second job.

    Args:
        target: ``host:port`` of the server; default ``$JOBQUEUE_SERVER``, else
            ``localhost:8080``.
        timeout: the deadline of each call attempt, in seconds.
        retries: retries on UNAVAILABLE (an int), or a full ``RetryPolicy``.
        tls: connect with TLS using the system's root certificates.
        ca_cert: path of the PEM root certificates to trust (implies TLS).
        client_cert: path of the PEM client certificate chain, for mutual TLS.
        client_key: path of the PEM private key of ``client_cert``.
        tls_server_name: the name to expect in the server's certificate, when
            it differs from the target's host.
        auth_token: sent as ``authorization: Bearer <token>`` on every call.

    Example:
        >>> async with AsyncJobClient(target="localhost:8080") as client:
        ...     job = await client.enqueue("send_email", {"to": "a@example.com"})
        ...     done = await client.wait(job.id, timeout=30)
    """

    def __init__(
        self,
        *,
        target: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int | RetryPolicy = DEFAULT_RETRY,
        tls: bool = False,
        ca_cert: PathLike | None = None,
        client_cert: PathLike | None = None,
        client_key: PathLike | None = None,
        tls_server_name: str | None = None,
        auth_token: str | None = None,
    ) -> None:
        self._conn = connection(
            target=target,
            timeout=timeout,
            retries=retries,
            tls=tls,
            ca_cert=ca_cert,
            client_cert=client_cert,
            client_key=client_key,
            tls_server_name=tls_server_name,
            auth_token=auth_token,
        )
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.JobServiceAsyncStub | None = None
        self._closed = False

    @property
    def target(self) -> str:
        """The ``host:port`` this client talks to."""
        return self._conn.target

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

    # -- submitting -----------------------------------------------------------------

    async def enqueue(
        self,
        type: str,
        payload: Payload = None,
        *,
        run_at: datetime | int | None = None,
        delay: timedelta | float | None = None,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit one job.

        Args:
            type: which handler runs it (1-128 characters of ``[A-Za-z0-9_.:-]``).
            payload: bytes as they are, str as UTF-8, anything else as compact JSON.
            run_at: when it becomes due: a datetime or epoch milliseconds.
            delay: or how long from now: a timedelta or seconds.
            max_attempts: runs before it ends FAILED; unset leaves it to the handler.
            idempotency_key: a repeated enqueue with the same key returns the job
                first stored under it. A fresh key is generated when omitted.

        Returns:
            The stored job (PENDING).

        Raises:
            InvalidJob: the server rejected an argument.
            QueueFull: the server is at capacity.
            ServerUnavailable: the server could not be reached, even after retries.
            ValueError: both ``run_at`` and ``delay`` were given.
        """
        request = enqueue_request(
            JobSpec(type, payload, run_at, delay, max_attempts, idempotency_key)
        )
        response = await self._call(self._jobs().EnqueueJob, request)
        return job_from_proto(response.job)

    async def enqueue_many(
        self, jobs: Iterable[JobSpec], *, idempotency_key: str | None = None
    ) -> builtins.list[Job]:
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
        request = enqueue_jobs_request(jobs, idempotency_key)
        if not request.jobs:
            return []
        response = await self._call(self._jobs().EnqueueJobs, request)
        return [job_from_proto(job) for job in response.jobs]

    # -- reading --------------------------------------------------------------------

    async def get(self, job_id: str) -> Job:
        """The job as it is now.

        Raises:
            JobNotFound: no such job, or its retention ran out.
            InvalidJob: ``job_id`` is not a job id.
        """
        response = await self._call(self._jobs().GetJob, pb.GetJobRequest(id=job_id), job_id=job_id)
        return job_from_proto(response.job)

    async def list_page(
        self,
        type: str | None = None,
        status: JobStatus | str | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str = "",
    ) -> JobPage:
        """One page of jobs, optionally of one type and status.

        Pass the returned ``next_page_token`` to get the next page; it is empty
        on the last page. ``list`` does this for you.
        """
        request = list_request(type, status, page_size, page_token)
        return page_from_proto(await self._call(self._jobs().ListJobs, request))

    async def list(
        self,
        type: str | None = None,
        status: JobStatus | str | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        limit: int | None = None,
    ) -> AsyncIterator[Job]:
        """Every matching job, fetched a page at a time as you iterate.

        Order: by status, then type, then due time (see the API docs). Jobs that
        change status while you page may be missed or seen twice.

        Args:
            type: only jobs of this type.
            status: only jobs in this status (a ``JobStatus`` or its name).
            page_size: jobs per round trip (the server caps it).
            limit: stop after this many jobs.
        """
        token = ""
        seen = 0
        while True:
            page = await self.list_page(type, status, page_size=page_size, page_token=token)
            for job in page.jobs:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield job
            if not page.next_page_token or (limit is not None and seen >= limit):
                return
            token = page.next_page_token

    async def stats(self) -> QueueStats:
        """Counts of jobs per type and status, and their totals."""
        return stats_from_proto(
            await self._call(self._jobs().GetQueueStats, pb.GetQueueStatsRequest())
        )

    # -- cancelling -----------------------------------------------------------------

    async def cancel(self, job_id: str) -> Job:
        """Cancel a PENDING job, or ask the worker running it to stop.

        Returns:
            The job after the request: CANCELLED, or RUNNING with ``cancel_requested``.

        Raises:
            JobNotFound: no such job.
            JobAlreadyFinished: the job had already finished.
        """
        request = pb.CancelJobRequest(id=job_id)
        attempts = [0]
        try:
            response = await self._call(
                self._jobs().CancelJob, request, job_id=job_id, attempts=attempts
            )
        except JobAlreadyFinished:
            # Retrying a cancel is safe, but when the first attempt's reply was
            # lost the retry finds the job CANCELLED by that very attempt; that
            # is the success the caller asked for, not an error.
            if attempts[0] > 1:
                job = await self.get(job_id)
                if job.status is JobStatus.CANCELLED:
                    return job
            raise
        return job_from_proto(response.job)

    # -- following ------------------------------------------------------------------

    # The timeout bounds a wait that spans several streams and reconnections, and
    # mirrors JobClient's signature; asyncio.timeout around it would work too.
    async def watch(
        self,
        job_id: str,
        *,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109
    ) -> AsyncIterator[Job]:
        """The job now, then again on every change, ending with its terminal state.

        Quick successive changes may arrive as one. The stream is resumed when
        the connection drops (with the retry policy's backoff).

        Args:
            job_id: the job to follow.
            timeout: give up after this long (seconds or a timedelta); None waits forever.

        Raises:
            WaitTimeout: the timeout passed before the job finished.
            JobNotFound: no such job.
        """
        loop = asyncio.get_running_loop()
        state = WatchState(job_id, self._conn.retry, timeout_seconds(timeout), loop.time())
        request = pb.WatchJobRequest(id=job_id)
        while True:
            remaining = state.remaining(loop.time())
            call = self._jobs().WatchJob(request, timeout=remaining, metadata=self._conn.metadata)
            try:
                async for response in call:
                    job = state.seen(job_from_proto(response.job))
                    yield job
                    if job.is_finished:
                        return
                pause = state.stream_ended(loop.time())
            except grpc.RpcError as error:
                pause = state.failed(error, loop.time())
            finally:
                call.cancel()
            await asyncio.sleep(pause)

    async def wait(
        self,
        job_id: str,
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 - see watch
    ) -> Job:
        """Wait until the job is COMPLETED, FAILED or CANCELLED, and return it.

        Built on the server's WatchJob stream: no polling, the answer arrives
        as soon as the job finishes.

        Raises:
            WaitTimeout: ``timeout`` (seconds or a timedelta) passed first.
            JobNotFound: no such job.
        """
        last: Job | None = None
        async for job in self.watch(job_id, timeout=timeout):
            last = job
        if last is None:  # watch only ends normally after a terminal state
            raise WaitTimeout(job_id)
        return last

    # -- plumbing -------------------------------------------------------------------

    def _jobs(self) -> pb_grpc.JobServiceAsyncStub:
        if self._closed:
            raise JobQueueClientError("the client is closed")
        if self._stub is None:
            self._channel = self._conn.aio_channel()
            self._stub = pb_grpc.JobServiceStub(self._channel)
        return self._stub

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        *,
        job_id: str | None = None,
        attempts: builtins.list[int] | None = None,
    ) -> _Resp:
        """One unary call with a deadline, retried with backoff while UNAVAILABLE.

        Every method routed here is safe to repeat (see ``RetryPolicy``).
        ``attempts[0]`` reports how many attempts were made.
        """
        policy = self._conn.retry
        attempt = 0
        while True:
            attempt += 1
            if attempts is not None:
                attempts[0] = attempt
            try:
                return await method(
                    request, timeout=self._conn.timeout_s, metadata=self._conn.metadata
                )
            except grpc.RpcError as error:
                if is_retryable(error) and attempt <= policy.max_retries:
                    await asyncio.sleep(policy.backoff_s(attempt))
                    continue
                raise error_from_rpc(error, job_id=job_id) from error
