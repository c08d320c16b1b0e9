"""The server path: a JobSource over the server's ``WorkerService``.

gRPC failures are translated here into the SDK's own errors, so nobody who
uses the worker has to import ``grpc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from jobqueue.domain import Job, JobStatus, Lease, LeaseState, Outcome, OutcomeKind
from mpataki.jobqueue.v1 import jobqueue_pb2
from mpataki.jobqueue.v1 import worker_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2_grpc as pb_grpc

from ._errors import SourceError, SourceUnavailable

_OUTCOME_KINDS: dict[OutcomeKind, pb.OutcomeKind.ValueType] = {
    OutcomeKind.COMPLETE: pb.OUTCOME_KIND_COMPLETE,
    OutcomeKind.RETRY: pb.OUTCOME_KIND_RETRY,
    OutcomeKind.FAIL: pb.OUTCOME_KIND_FAIL,
    OutcomeKind.RELEASE: pb.OUTCOME_KIND_RELEASE,
    OutcomeKind.CANCELLED: pb.OUTCOME_KIND_CANCELLED,
}
_LEASE_STATES: dict[int, LeaseState] = {
    pb.LEASE_STATE_ACTIVE: LeaseState.ACTIVE,
    pb.LEASE_STATE_CANCEL_REQUESTED: LeaseState.CANCEL_REQUESTED,
    pb.LEASE_STATE_LOST: LeaseState.LOST,
}
_UNAVAILABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""As large as the server's default: a claim of many big payloads must fit."""
_SETTLE_BATCH_BYTES = 4 * 1024 * 1024
"""A SettleJobs call carries at most this many encoded bytes (one bigger outcome goes alone).

gRPC's usual receive limit, so a batch of big results fits a server tuned
below its 64 MiB default; a message over the server's limit is refused whole.
"""
_TOO_LARGE = re.compile(r"larger than (?:max \(\d+ vs\. (\d+)\)|configured max (\d+))")
"""A message over a size limit, in gRPC core's words (either side's: "size vs. limit")
or connectrpc's ("larger than configured max N", a server on the Connect stack)."""
_WATCH_RETRY_MIN_S = 0.2
_WATCH_RETRY_MAX_S = 5.0
_WATCH_HEALTHY_S = 10.0
"""A stream open this long counts as healthy: the next reconnect starts from the shortest wait."""

_log = logging.getLogger(__name__)


class GrpcSource:
    """Takes jobs through a jobqueue server (``JOBQUEUE_SERVER``, ``host:port``).

    Args:
        target: the server's address, ``host:port``.
        timeout_s: deadline of settle and renew calls; a claim gets its wait on top.
        credentials: TLS credentials; None means a plaintext channel.
        metadata: sent with every call, e.g. ``[("authorization", "Bearer ...")]``.
        channel: an existing channel to use instead (it is not closed by ``close``).

    The server sweeps expired leases itself, so ``requeue_expired`` does nothing
    here. No connection is made before the first call.

    Outcomes are judged by the server one by one (its result limit is the
    direct path's); they travel in calls of at most 4 MiB, and one that the
    server cannot even receive (over its message size limit) fails its job
    here with the same "result too large" error, never holding back the rest.
    ``cancellations`` follows the server's ``WatchCancellations`` stream, so a
    cancel reaches the worker at once rather than at its next heartbeat.
    """

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float = 10.0,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._target = target
        self._timeout_s = timeout_s
        self._credentials = credentials
        self._metadata = tuple(metadata) or None
        self._channel = channel
        self._owns_channel = channel is None
        self._stub: pb_grpc.WorkerServiceAsyncStub | None = None
        self._closed = False
        self._closing = asyncio.Event()
        # Open cancellation streams, ended by ``close`` even on a channel it does not own.
        self._watches: set[grpc.aio.UnaryStreamCall[Any, Any]] = set()

    @property
    def target(self) -> str:
        return self._target

    def _worker_stub(self) -> pb_grpc.WorkerServiceAsyncStub:
        # A grpc.aio channel belongs to the event loop it is created on, so it
        # is created on first use, inside the worker's loop.
        if self._stub is None:
            if self._channel is None:
                options = [
                    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                    ("grpc.keepalive_time_ms", 20_000),
                    ("grpc.keepalive_permit_without_calls", 1),
                ]
                if self._credentials is None:
                    self._channel = grpc.aio.insecure_channel(self._target, options=options)
                else:
                    self._channel = grpc.aio.secure_channel(
                        self._target, self._credentials, options=options
                    )
            self._stub = pb_grpc.WorkerServiceStub(self._channel)
        return self._stub

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        request = pb.ClaimJobsRequest(
            types=types, max_jobs=limit, lease_ms=lease_ms, wait_ms=wait_ms
        )
        try:
            response = await self._worker_stub().ClaimJobs(
                request, timeout=wait_ms / 1000 + self._timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None
        return [
            Lease(_job_from_proto(lease.job), lease.token, lease.deadline_ms)
            for lease in response.leases
        ]

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        accepted: list[bool] = []
        for chunk in _chunks([_outcome_to_proto(o) for o in outcomes], _SETTLE_BATCH_BYTES):
            accepted.extend(await self._settle(chunk))
        return accepted

    async def _settle(self, outcomes: list[pb.Outcome]) -> list[bool]:
        try:
            response = await self._worker_stub().SettleJobs(
                pb.SettleJobsRequest(outcomes=outcomes),
                timeout=self._timeout_s,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as error:
            limit = _size_limit(error)
            if limit is None:
                raise _translate(error) from None
            # Refused unread, so nothing was applied: split until the outcome
            # that cannot pass is alone, and fail its job instead.
            if len(outcomes) > 1:
                half = len(outcomes) // 2
                return await self._settle(outcomes[:half]) + await self._settle(outcomes[half:])
            (outcome,) = outcomes
            if not outcome.HasField("result"):
                raise _translate(error) from None
            return await self._settle([_fail_too_large(outcome, limit)])
        return list(response.accepted)

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        if not leases:
            return []
        request = pb.RenewLeasesRequest(
            leases=[pb.LeaseRef(job_id=job_id, token=token) for job_id, token in leases],
            lease_ms=lease_ms,
        )
        try:
            response = await self._worker_stub().RenewLeases(
                request, timeout=self._timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None
        # An unknown future state is safest read as "keep going": the next
        # heartbeat asks again, and a stale token is refused at settle anyway.
        return [_LEASE_STATES.get(state, LeaseState.ACTIVE) for state in response.states]

    async def requeue_expired(self, *, limit: int, lock_ms: int = 0) -> int:
        return 0

    async def cancellations(self) -> AsyncIterator[str]:
        """Ids of running jobs whose cancellation was requested, from ``WatchCancellations``.

        Reconnects with backoff (0.2 s doubling to 5 s) whenever the stream
        fails or ends, until the source is closed: a cancel requested while it
        was down still reaches the worker through ``renew``. A server too old
        to have the RPC is asked again at the longest wait.
        """
        wait_s = _WATCH_RETRY_MIN_S
        while not self._closed:
            opened = time.monotonic()
            call = self._worker_stub().WatchCancellations(
                pb.WatchCancellationsRequest(), metadata=self._metadata
            )
            self._watches.add(call)
            try:
                async for notice in call:
                    wait_s = _WATCH_RETRY_MIN_S
                    yield notice.job_id
            except asyncio.CancelledError:
                # grpc.aio reports a call cancelled by ``close`` as the
                # caller's own cancellation: end quietly, unless it is.
                task = asyncio.current_task()
                if self._closed and (task is None or not task.cancelling()):
                    return
                raise
            except grpc.aio.AioRpcError as error:
                if self._closed:
                    return
                _log.info("cancellation stream from %s ended: %s", self._target, error.code().name)
                if error.code() is grpc.StatusCode.UNIMPLEMENTED:
                    wait_s = _WATCH_RETRY_MAX_S
            finally:
                call.cancel()
                self._watches.discard(call)
            if time.monotonic() - opened >= _WATCH_HEALTHY_S:
                wait_s = _WATCH_RETRY_MIN_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), wait_s)
            wait_s = min(wait_s * 2, _WATCH_RETRY_MAX_S)

    async def close(self) -> None:
        self._closed = True
        self._closing.set()
        for call in self._watches:
            call.cancel()
        if self._owns_channel and self._channel is not None:
            await self._channel.close(None)
        self._channel = None if self._owns_channel else self._channel
        self._stub = None


def _job_from_proto(message: jobqueue_pb2.Job) -> Job:
    return Job(
        id=message.id,
        type=message.type,
        payload=message.payload,
        status=JobStatus(message.status),
        execution_time_ms=message.execution_time_ms,
        created_at=message.created_at,
        updated_at=message.updated_at,
        attempts=message.attempts,
        max_attempts=message.max_attempts if message.HasField("max_attempts") else None,
        last_error=message.last_error if message.HasField("last_error") else None,
        cancel_requested=message.cancel_requested,
    )


def _outcome_to_proto(outcome: Outcome) -> pb.Outcome:
    message = pb.Outcome(
        job_id=outcome.job_id, token=outcome.token, kind=_OUTCOME_KINDS[outcome.kind]
    )
    if outcome.result is not None:
        message.result = outcome.result
    if outcome.error is not None:
        message.error = outcome.error
    if outcome.retry_delay_ms is not None:
        message.retry_delay_ms = outcome.retry_delay_ms
    return message


def _chunks(messages: list[pb.Outcome], budget: int) -> list[list[pb.Outcome]]:
    """Consecutive runs of messages whose encoded sizes add up to at most ``budget``."""
    chunks: list[list[pb.Outcome]] = []
    chunk: list[pb.Outcome] = []
    size = 0
    for message in messages:
        # Each repeated entry costs its bytes plus a tag and a length prefix.
        cost = message.ByteSize() + 6
        if chunk and size + cost > budget:
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(message)
        size += cost
    if chunk:
        chunks.append(chunk)
    return chunks


def _size_limit(error: grpc.aio.AioRpcError) -> int | None:
    """The message size limit a call hit, or None when it failed for another reason."""
    if error.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    found = _TOO_LARGE.search(error.details() or "")
    return int(found.group(1) or found.group(2)) if found else None


def _fail_too_large(outcome: pb.Outcome, limit: int) -> pb.Outcome:
    """The job's FAIL in the words the server uses for a result over its limit."""
    return pb.Outcome(
        job_id=outcome.job_id,
        token=outcome.token,
        kind=pb.OUTCOME_KIND_FAIL,
        error=f"result too large: {len(outcome.result)} bytes > limit of {limit}",
    )


def _translate(error: grpc.aio.AioRpcError) -> Exception:
    code = error.code()
    details = error.details() or code.name
    if code in _UNAVAILABLE:
        return SourceUnavailable(f"{code.name}: {details}")
    return SourceError(code.name, details)
