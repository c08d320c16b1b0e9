"""The server path: a JobSource over the server's ``WorkerService``.

Built on the client SDK's connection code (``jobqueue.client``): the same
target, TLS, token and channel options, the same table from gRPC status codes
to errors and the same backoff, and the server's own proto <-> domain mapping
of jobs (``jobqueue.grpc``). gRPC failures are translated into the worker
SDK's errors, so nobody who uses the worker has to import ``grpc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Unpack

import grpc

from jobqueue.client._channel import connection
from jobqueue.client._errors import QueueFull, ServerUnavailable, error_from_rpc, status_of
from jobqueue.client._retry import RetryPolicy
from jobqueue.domain import Lease, LeaseState, Outcome, OutcomeKind, ProgressReport, WorkerInfo
from jobqueue.grpc import job_from_proto, worker_info_to_proto
from mpataki.jobqueue.v1 import worker_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2_grpc as pb_grpc

from ._errors import SourceError, SourceUnavailable, WorkerError
from ._sources import ServerOptions

# The domain's enums and the wire's share their member names.
_OUTCOME_KINDS = {kind: pb.OutcomeKind.Value(f"OUTCOME_KIND_{kind.name}") for kind in OutcomeKind}
_LEASE_STATES = {pb.LeaseState.Value(f"LEASE_STATE_{s.name}"): s for s in LeaseState}
_NO_OPTIONS = ServerOptions(
    auth_token=None,
    tls=False,
    ca_cert=None,
    client_cert=None,
    client_key=None,
    tls_server_name=None,
)
"""What ``connection`` is given for an option the caller left out: plaintext, no token."""
_KEEPALIVE: tuple[tuple[str, int | str], ...] = (
    # The cancellation stream stays open for the worker's life: notice a dead peer.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
)
_SETTLE_BATCH_BYTES = 4 * 1024 * 1024
"""A SettleJobs call carries at most this many encoded bytes (one bigger outcome goes alone).

gRPC's usual receive limit, so a batch of big results fits a server tuned
below its 64 MiB default; a message over the server's limit is refused whole.
"""
_GRPC_DEFAULT_RECEIVE_BYTES = 4 * 1024 * 1024
"""gRPC's receive limit on a channel whose options set none."""
_TOO_LARGE = re.compile(r"larger than (?:max \(\d+ vs\. (\d+)\)|configured max (\d+))")
"""A message over a size limit, in gRPC core's words (either side's: "size vs. limit")
or connectrpc's ("larger than configured max N", a server on the Connect stack)."""
_WATCH_RETRY = RetryPolicy(initial_backoff_s=0.2, max_backoff_s=5.0)
"""Reconnects of the cancellation stream: the client's full-jitter backoff, up to 5 s."""
_WATCH_HEALTHY_S = 10.0
"""A stream open this long counts as healthy: the next reconnect starts from the shortest wait."""
_WATCH_GIVE_UP = 64
"""A failure count that puts the backoff at its cap (a server without the RPC)."""

_log = logging.getLogger(__name__)


class GrpcSource:
    """Takes jobs through a jobqueue server (``host:port``).

    Args:
        target: the server's address, ``host:port``.
        timeout_s: deadline of settle and renew calls; a claim gets its wait on top.
        credentials: ``grpc.ChannelCredentials`` to use instead of the TLS
            options (for callers that already build their own).
        metadata: more metadata sent with every call.
        channel: an existing channel to use instead (it is not closed by ``close``).
        max_response_bytes: the largest answer this worker can receive, sent
            with every claim so the server hands out no more jobs than fit
            (a reply over it would strand its leases until they lapse). By
            default the receive limit of the channel this source opens (the
            client SDK's 64 MiB), or, on a ``channel`` given, gRPC's default
            of 4 MiB, which lets a claim take only 3 jobs when payloads may
            reach 1 MiB: pass that channel's own limit.
        **options: ``auth_token`` and the TLS options, as ``JobClient`` takes
            them (see ``ServerOptions``), read by the client SDK's own code.

    The server sweeps expired leases itself, so
    ``requeue_expired`` does nothing here. No connection is made before the
    first call.

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
        max_response_bytes: int | None = None,
        **options: Unpack[ServerOptions],
    ) -> None:
        given = _NO_OPTIONS.copy()
        given.update(options)
        conn = connection(target=target, timeout=timeout_s, retries=0, **given)
        self._conn = dataclasses.replace(
            conn,
            credentials=credentials or conn.credentials,
            metadata=conn.metadata + tuple(metadata),
            options=conn.options + _KEEPALIVE,
        )
        if max_response_bytes is None:
            max_response_bytes = _receive_limit(() if channel is not None else self._conn.options)
        if max_response_bytes < 0:
            raise ValueError(f"max_response_bytes must not be negative, got {max_response_bytes}")
        self._max_response_bytes = max_response_bytes
        self._timeout_s = timeout_s
        self._metadata = self._conn.metadata or None
        self._channel = channel
        self._owns_channel = channel is None
        self._stub: pb_grpc.WorkerServiceAsyncStub | None = None
        self._closed = False
        self._closing = asyncio.Event()
        # Open cancellation streams, ended by ``close`` even on a channel it does not own.
        self._watches: set[grpc.aio.UnaryStreamCall[Any, Any]] = set()

    @property
    def target(self) -> str:
        return self._conn.target

    def _worker_stub(self) -> pb_grpc.WorkerServiceAsyncStub:
        # A grpc.aio channel belongs to the event loop it is created on, so it
        # is created on first use, inside the worker's loop.
        if self._stub is None:
            if self._channel is None:
                self._channel = self._conn.aio_channel()
            self._stub = pb_grpc.WorkerServiceStub(self._channel)
        return self._stub

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int
    ) -> list[Lease]:
        request = pb.ClaimJobsRequest(
            types=types,
            max_jobs=limit,
            lease_ms=lease_ms,
            wait_ms=wait_ms,
            max_response_bytes=self._max_response_bytes,
        )
        try:
            response = await self._worker_stub().ClaimJobs(
                request, timeout=wait_ms / 1000 + self._timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None
        return _leases(response.leases)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        accepted: list[bool] = []
        for chunk in _chunks(outcomes, _SETTLE_BATCH_BYTES):
            accepted.extend(await self._settle(chunk))
        return accepted

    async def settle_then_claim(
        self, outcomes: Sequence[Outcome], types: Sequence[str], *, limit: int, lease_ms: int
    ) -> tuple[list[bool], list[Lease]]:
        """One SettleJobs call that also claims: its ``claim`` rides with the last chunk.

        A server older than the field answers no leases, which the worker
        reads as "claim as before". A last chunk over the server's size limit
        is settled the usual way (split until it passes), without the claim.
        """
        chunks = _chunks(outcomes, _SETTLE_BATCH_BYTES) or [outcomes]
        accepted: list[bool] = []
        for chunk in chunks[:-1]:
            accepted.extend(await self._settle(chunk))
        last = chunks[-1]
        request = _settle_request(last)
        claim = request.claim
        claim.types.extend(types)
        claim.max_jobs = limit
        claim.lease_ms = lease_ms
        claim.max_response_bytes = self._max_response_bytes
        try:
            response = await self._worker_stub().SettleJobs(
                request, timeout=self._timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            if _size_limit(error) is None:
                raise _translate(error) from None
            accepted.extend(await self._settle(last))
            return accepted, []
        accepted.extend(response.accepted)
        return accepted, _leases(response.leases)

    async def _settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        try:
            response = await self._worker_stub().SettleJobs(
                _settle_request(outcomes), timeout=self._timeout_s, metadata=self._metadata
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
            if outcome.result is None:
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

    async def report_progress(self, reports: Sequence[ProgressReport]) -> list[bool]:
        """Handlers' progress, a batch per call (``WorkerService.ReportProgress``)."""
        if not reports:
            return []
        request = pb.ReportProgressRequest()
        for report in reports:
            request.reports.add(
                lease=pb.LeaseRef(job_id=report.job_id, token=report.token),
                fraction=report.fraction,
                message=report.message,
            )
        try:
            response = await self._worker_stub().ReportProgress(
                request, timeout=self._timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None
        return list(response.applied)

    async def heartbeat(self, worker: WorkerInfo, *, ttl_ms: int, stopping: bool = False) -> None:
        """Say this worker is alive (``WorkerService.Heartbeat``), or that it is leaving."""
        request = pb.HeartbeatRequest(
            worker=worker_info_to_proto(worker), ttl_ms=ttl_ms, stopping=stopping
        )
        try:
            await self._worker_stub().Heartbeat(
                request, timeout=self._timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None

    async def cancellations(self) -> AsyncIterator[str]:
        """Ids of running jobs whose cancellation was requested, from ``WatchCancellations``.

        Reconnects with the client's backoff (full jitter, bounds from 0.2 s
        doubling to 5 s) whenever the stream fails or ends, until the source is
        closed: a cancel requested while it was down still reaches the worker
        through ``renew``. A server too old to have the RPC is asked again at
        the longest bound.
        """
        failures = 0
        while not self._closed:
            opened = time.monotonic()
            call = self._worker_stub().WatchCancellations(
                pb.WatchCancellationsRequest(), metadata=self._metadata
            )
            self._watches.add(call)
            try:
                async for notice in call:
                    failures = 0
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
                _log.info("cancellation stream from %s ended: %s", self.target, error.code().name)
                if error.code() is grpc.StatusCode.UNIMPLEMENTED:
                    failures = _WATCH_GIVE_UP
            finally:
                call.cancel()
                self._watches.discard(call)
            if time.monotonic() - opened >= _WATCH_HEALTHY_S:
                failures = 0
            failures += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), _WATCH_RETRY.backoff_s(failures))

    async def close(self) -> None:
        self._closed = True
        self._closing.set()
        for call in self._watches:
            call.cancel()
        if self._owns_channel and self._channel is not None:
            await self._channel.close(None)
        self._channel = None if self._owns_channel else self._channel
        self._stub = None


def _leases(leases: Iterable[pb.Lease]) -> list[Lease]:
    return [Lease(job_from_proto(lease.job), lease.token, lease.deadline_ms) for lease in leases]


def _settle_request(outcomes: Sequence[Outcome]) -> pb.SettleJobsRequest:
    """The request, each outcome built in place in its repeated field.

    ``pb.SettleJobsRequest(outcomes=[...])`` would copy every message built
    beforehand: one message less per settled job.
    """
    request = pb.SettleJobsRequest()
    add = request.outcomes.add
    kinds = _OUTCOME_KINDS
    for outcome in outcomes:
        message = add(job_id=outcome.job_id, token=outcome.token, kind=kinds[outcome.kind])
        if outcome.result is not None:
            message.result = outcome.result
        if outcome.error is not None:
            message.error = outcome.error
        if outcome.retry_delay_ms is not None:
            message.retry_delay_ms = outcome.retry_delay_ms
    return request


def _chunks(outcomes: Sequence[Outcome], budget: int) -> list[Sequence[Outcome]]:
    """Consecutive runs of outcomes whose encoded sizes add up to at most ``budget``.

    Sizes are read off the fields, unencoded, as an upper bound: each field
    costs its bytes plus a tag and a length or a varint; 32 covers the fixed
    parts (kind, retry delay, the entry's own tag and length), 6 the prefix
    of a result or an error. (Inline: this runs for every settled job.)
    """
    chunks: list[Sequence[Outcome]] = []
    start = 0
    size = 0
    for index, outcome in enumerate(outcomes):
        cost = len(outcome.job_id) + len(outcome.token) + 32
        if outcome.result is not None:
            cost += len(outcome.result) + 6
        if outcome.error is not None:
            cost += len(outcome.error.encode()) + 6
        if index > start and size + cost > budget:
            chunks.append(outcomes[start:index])
            start, size = index, 0
        size += cost
    if start < len(outcomes):
        chunks.append(outcomes[start:])
    return chunks


def _receive_limit(options: Iterable[tuple[str, int | str]]) -> int:
    """The receive limit a channel opened with ``options`` has: the last one set, 0 for none.

    gRPC's own default is 4 MiB; -1 (no limit) reads as 0 too.
    """
    limit: int | str = _GRPC_DEFAULT_RECEIVE_BYTES
    for name, value in options:
        if name == "grpc.max_receive_message_length":
            limit = value
    return max(int(limit), 0)


def _size_limit(error: grpc.aio.AioRpcError) -> int | None:
    """The message size limit a call hit, or None when it failed for another reason."""
    code, details = status_of(error)
    if code is not grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    found = _TOO_LARGE.search(details)
    return int(found.group(1) or found.group(2)) if found else None


def _fail_too_large(outcome: Outcome, limit: int) -> Outcome:
    """The job's FAIL in the words the server uses for a result over its limit."""
    return Outcome(
        job_id=outcome.job_id,
        token=outcome.token,
        kind=OutcomeKind.FAIL,
        error=f"result too large: {len(outcome.result or b'')} bytes > limit of {limit}",
    )


def _translate(error: grpc.aio.AioRpcError) -> WorkerError:
    """The client's reading of a failed call, as the worker's error.

    What the client calls unavailable (and a server that is shedding load,
    RESOURCE_EXHAUSTED) the worker rides out by retrying; anything else is a
    refusal, with the status code kept.
    """
    failure = error_from_rpc(error)
    code = failure.code or "UNKNOWN"
    if isinstance(failure, ServerUnavailable | QueueFull):
        return SourceUnavailable(f"{code}: {failure.message}")
    return SourceError(code, failure.message)
