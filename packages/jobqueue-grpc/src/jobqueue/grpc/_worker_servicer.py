"""WorkerService over gRPC: workers in any language lease jobs through the server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

import grpc
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from jobqueue.domain import (
    Clock,
    InvalidJob,
    JobStore,
    Lease,
    LeaseService,
    Limits,
    Outcome,
    PresenceService,
    PresenceStore,
    ProgressReport,
    ProgressService,
    ProgressStore,
)
from mpataki.jobqueue.v1 import worker_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2_grpc as pb_grpc

from ._mapping import (
    add_leases,
    lease_refs_from_proto,
    lease_state_to_proto,
    outcome_from_proto,
)
from ._options import ServerOptions
from ._presence import heartbeat
from ._status import NotServedHere

_log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

_PER_JOB_OVERHEAD_BYTES = 16 * 1024
"""Room for a leased job's fields besides its payload, as a claim plans it: what they
usually take (a last error of 8 KiB, some headers); ``_fitted`` trims the rare rest."""
_WORST_FIELDS_BYTES = 96 * 1024
"""The most a leased job's fields besides its payload can take: 32 headers of 128-character
keys and 1 KiB values, an 8,192-character last error, the keys, id, type, token and
progress message, at 4 bytes a character (tests/grpc/test_claim_reply_size.py builds
the largest). An answer whose payloads and n times this fit the room is not measured."""


def _may_outgrow(count: int, payloads: int, room: int) -> bool:
    """Whether ``count`` leases whose payloads take ``payloads`` bytes could outgrow
    ``room``: only then is the answer measured (its encoding costs about as much again
    as gRPC's own). By the payloads' own sizes, not today's limit: a job stored under
    a larger limit is as big as it was."""
    return count > 1 and payloads + count * _WORST_FIELDS_BYTES > room


def _entry_bytes(size: int) -> int:
    """Bytes a message of ``size`` takes as an entry of a repeated field numbered under 16:
    its tag, its length as a varint, itself."""
    return 1 + (size.bit_length() + 6) // 7 + size if size else 2


_DEADLINE_MARGIN_S = 0.25
"""A claim answers this long before the caller's deadline, so the leases reach it."""


class WorkerServicer(pb_grpc.WorkerServiceServicer):
    """Maps each RPC onto the domain's ``LeaseService``: claim, settle, renew, cancellations.

    A remote worker is checked like any other caller, by the use case: its
    types, counts, lease durations, waits, ids, tokens and outcomes meet the
    same ``LeaseService`` rules as on the direct path. What stays here is the
    transport's own: how many leases fit in one response, a claim that must
    answer before the caller's deadline, and claims whose caller left.

    Args:
        leases: the use cases; a bare ``JobStore`` is wrapped in a
            ``LeaseService`` with ``limits``, the lease rules of ``options``
            and ``clock`` (for embedders and tests).
        limits: only used to wrap a bare store; a ``LeaseService`` has its own.
        options: transport limits (message size); their lease and wait
            bounds only apply when wrapping a bare store.
        clock: only used to wrap a bare store: turns an old worker's absolute
            ``retry_at_ms`` into a delay.
        presence: what Heartbeat records into; by default the store's own
            when it is a ``PresenceStore`` (both stores are). Without one,
            Heartbeat answers UNIMPLEMENTED.
    """

    def __init__(
        self,
        leases: LeaseService | JobStore,
        *,
        limits: Limits | None = None,
        options: ServerOptions | None = None,
        clock: Clock | None = None,
        presence: PresenceService | None = None,
    ) -> None:
        self._options = options or ServerOptions()
        if isinstance(leases, LeaseService):
            self._leases = leases
        else:
            self._leases = LeaseService(
                leases, limits=limits, rules=self._options.lease_rules(), clock=clock
            )
        store = self._leases.store
        if presence is None and isinstance(store, PresenceStore):
            presence = PresenceService(store)
        self._presence = presence
        # Both stores keep progress; a store of one's own may not (UNIMPLEMENTED then).
        self._progress = (
            ProgressService(store, limits=self._leases.limits)
            if isinstance(store, ProgressStore)
            else None
        )
        # Hand-backs of claims whose caller left; held so they are not collected mid-way.
        self._hand_backs: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    def _room(self, max_response_bytes: int) -> int:
        """The largest answer both ends take: the caller's ``max_response_bytes`` (0: no
        limit of its own) and the server's message limit. A reply the caller cannot
        receive would strand its leases until they lapse. Checked before anything
        else of the call is done.
        """
        if max_response_bytes < 0:
            raise InvalidJob("max_response_bytes", "must not be negative")
        room = self._options.max_message_bytes
        return min(room, max_response_bytes) if max_response_bytes else room

    def _claim_cap(self, room: int) -> int:
        """The most jobs a claim asks the store for: as many as fit ``room`` when every
        payload is at its limit. Other fields are usually small, so this rarely
        claims more than fit; ``_fitted`` hands such extra leases back."""
        per_job = self._leases.limits.max_payload_bytes + _PER_JOB_OVERHEAD_BYTES
        return max(1, min(self._leases.rules.max_claim_jobs, room // per_job))

    def _fitted(
        self,
        leases: RepeatedCompositeFieldContainer[pb.Lease],
        total: int,
        claimed: list[Lease],
        room: int,
    ) -> None:
        """Drop the leases past ``room`` from an answer of ``total`` bytes, and hand them back.

        Big headers, last errors and keys beside big payloads can outgrow the
        estimate ``_claim_cap`` made (a job's fields besides its payload reach
        about 74 KB). The first lease always stays: alone over the caller's limit,
        it lapses unconfirmed as before, and another worker may take it.
        """
        sizes = [_entry_bytes(lease.ByteSize()) for lease in leases]
        size = total - sum(sizes)
        keep = 0
        for keep, entry in enumerate(sizes):
            if keep and size + entry > room:
                break
            size += entry
        else:
            return
        del leases[keep:]
        extra = claimed[keep:]
        # Not awaited: the kept leases' time runs already (the task is held till done).
        self._start_hand_back(extra, why=f"that did not fit an answer of {room} bytes")

    async def ClaimJobs(
        self, request: pb.ClaimJobsRequest, context: Context
    ) -> pb.ClaimJobsResponse:
        remaining = context.time_remaining()
        # Jobs leased after the caller gave up would have to be handed back:
        # stop waiting before its deadline.
        budget = None if remaining is None else int((remaining - _DEADLINE_MARGIN_S) * 1000)
        room = self._room(request.max_response_bytes)
        leases = await self._shielded(
            self._leases.claim(
                request.types,
                limit=request.max_jobs,
                lease_ms=request.lease_ms,
                wait_ms=request.wait_ms,
                max_jobs=self._claim_cap(room),
                wait_budget_ms=budget,
            ),
            context,
        )
        response = pb.ClaimJobsResponse()
        payloads = add_leases(response.leases, leases)
        if _may_outgrow(len(leases), payloads, room) and (total := response.ByteSize()) > room:
            self._fitted(response.leases, total, leases, room)
        return response

    async def SettleJobs(
        self, request: pb.SettleJobsRequest, context: Context
    ) -> pb.SettleJobsResponse:
        outcomes = [self._outcome(message, index) for index, message in enumerate(request.outcomes)]
        if not request.HasField("claim"):
            return pb.SettleJobsResponse(accepted=await self._leases.settle(outcomes))
        claim = request.claim
        room = self._room(claim.max_response_bytes)
        max_jobs = self._claim_cap(room)
        accepted: list[bool] = []

        async def settle_then_claim() -> list[Lease]:
            nonlocal accepted
            accepted, leases = await self._leases.settle_then_claim(
                outcomes,
                claim.types,
                limit=claim.max_jobs,
                lease_ms=claim.lease_ms,
                max_jobs=max_jobs,
            )
            return leases

        leases = await self._shielded(settle_then_claim(), context)
        response = pb.SettleJobsResponse(accepted=accepted)
        payloads = add_leases(response.leases, leases)
        if _may_outgrow(len(leases), payloads, room) and (total := response.ByteSize()) > room:
            self._fitted(response.leases, total, leases, room)
        return response

    async def _shielded(
        self, claim: Coroutine[Any, Any, list[Lease]], context: Context
    ) -> list[Lease]:
        """The leases of ``claim``, run to its end whatever its caller does.

        Once sent, a claim may lease jobs at any moment, so it is never
        cancelled half-way: a caller that gives up would leave leases nobody
        holds. It runs shielded, and what it returns after the caller left
        (cancelled, or past its deadline) is handed back at once.
        """
        call = asyncio.ensure_future(claim)
        try:
            leases = await asyncio.shield(call)
        except asyncio.CancelledError:
            call.add_done_callback(self._hand_back_when_done)
            raise
        remaining = context.time_remaining()
        if leases and (context.cancelled() or (remaining is not None and remaining <= 0)):
            await asyncio.shield(self._start_hand_back(leases))
            return []
        return leases

    async def RenewLeases(
        self, request: pb.RenewLeasesRequest, context: Context
    ) -> pb.RenewLeasesResponse:
        states = await self._leases.renew(
            lease_refs_from_proto(request.leases), lease_ms=request.lease_ms
        )
        return pb.RenewLeasesResponse(states=[lease_state_to_proto(state) for state in states])

    async def ReportProgress(
        self, request: pb.ReportProgressRequest, context: Context
    ) -> pb.ReportProgressResponse:
        if self._progress is None:
            raise NotServedHere("ReportProgress")
        reports = [
            ProgressReport(
                job_id=report.lease.job_id,
                token=report.lease.token,
                fraction=report.fraction,
                message=report.message,
            )
            for report in request.reports
        ]
        return pb.ReportProgressResponse(applied=await self._progress.report(reports))

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: Context
    ) -> pb.HeartbeatResponse:
        if self._presence is None:
            raise NotServedHere("Heartbeat")
        await heartbeat(self._presence, request)
        return pb.HeartbeatResponse()

    async def WatchCancellations(
        self, request: pb.WatchCancellationsRequest, context: Context
    ) -> AsyncIterator[pb.WatchCancellationsResponse]:
        iterator = aiter(self._leases.cancellations())
        stopping = asyncio.ensure_future(self._stopping.wait())
        notice: asyncio.Future[str] | None = None
        try:
            while True:
                # Cancels are rare: a task per notice costs nothing, and lets
                # ``stop_streams`` end an idle stream at once.
                notice = asyncio.ensure_future(anext(iterator))
                await asyncio.wait((notice, stopping), return_when=asyncio.FIRST_COMPLETED)
                if not notice.done():
                    return
                try:
                    job_id = notice.result()
                except StopAsyncIteration:
                    return
                yield pb.WatchCancellationsResponse(job_id=job_id)
        finally:
            stopping.cancel()
            if notice is not None and not notice.done():
                notice.cancel()
                await asyncio.gather(notice, return_exceptions=True)
            # The caller left or the server stops: the store's subscription
            # must end with the stream, not when the iterator is collected.
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    async def stop_streams(self) -> None:
        """End every WatchCancellations stream and finish handing back left claims.

        For a graceful stop, before the server's grace period starts: a worker
        holds its stream open for as long as it runs, so the streams would
        otherwise keep the server for the whole grace period. Ended streams
        close with OK, and their workers reconnect (to another server); a
        stream opened afterwards ends at once.
        """
        self._stopping.set()
        if self._hand_backs:
            await asyncio.gather(*self._hand_backs, return_exceptions=True)

    def _hand_back_when_done(self, claim: asyncio.Future[list[Lease]]) -> None:
        if claim.cancelled():
            return
        error = claim.exception()
        if error is not None:
            _log.info("a claim whose caller left failed: %s", error)
            return
        leases = claim.result()
        if leases:
            self._start_hand_back(leases)

    def _start_hand_back(
        self, leases: Sequence[Lease], *, why: str = "of a claim whose caller left"
    ) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self._hand_back(leases, why))
        self._hand_backs.add(task)
        task.add_done_callback(self._hand_backs.discard)
        return task

    async def _hand_back(self, leases: Sequence[Lease], why: str) -> None:
        """RELEASE leases nobody will hold: the jobs are due again, their attempt given back."""
        try:
            await self._leases.release(leases)
        except Exception as error:
            # Unconfirmed leases expire without charging an attempt: nothing is lost.
            _log.warning("could not hand back %d lease(s) %s: %s", len(leases), why, error)
        else:
            _log.info("handed back %d lease(s) %s", len(leases), why)

    def _outcome(self, message: pb.Outcome, index: int) -> Outcome | None:
        """The domain outcome, or None for one whose kind is unknown: refused alone."""
        try:
            return outcome_from_proto(message, index=index, delay_until=self._leases.delay_until)
        except InvalidJob as error:
            _log.info("SettleJobs: refused %s", error)
            return None
