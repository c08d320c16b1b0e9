"""WorkerService over gRPC: workers in any language lease jobs through the server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from jobqueue.domain import (
    Clock,
    InvalidJob,
    JobStore,
    Lease,
    LeaseService,
    Limits,
    Outcome,
    OutcomeKind,
    SystemClock,
    validate_type,
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

_log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

_MAX_CLAIM_TYPES = 1_000
_PER_JOB_OVERHEAD_BYTES = 16 * 1024
"""Room for a leased job's fields besides its payload (its last error is at most 8 KiB)."""
_DEADLINE_MARGIN_S = 0.25
"""A claim answers this long before the caller's deadline, so the leases reach it."""


class WorkerServicer(pb_grpc.WorkerServiceServicer):
    """Maps each RPC onto the domain's ``LeaseService``: claim, settle, renew, cancellations.

    A remote worker is checked like any other caller: ids, tokens, kinds,
    times and sizes are validated here or by the use case, since the store
    trusts its input. The rules on outcomes (the result limit, delays) are the
    ``LeaseService``'s, so they are the same as on the direct path.

    Args:
        leases: the use cases; a bare ``JobStore`` is wrapped in a
            ``LeaseService`` with ``limits`` (for embedders and tests).
        limits: only used to wrap a bare store; a ``LeaseService`` has its own.
        options: transport limits (message size, lease and wait bounds).
        clock: this server's clock, used only to turn an old worker's absolute
            ``retry_at_ms`` into a delay.
    """

    def __init__(
        self,
        leases: LeaseService | JobStore,
        *,
        limits: Limits | None = None,
        options: ServerOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(leases, LeaseService):
            self._leases = leases
        else:
            self._leases = LeaseService(leases, limits=limits)
        self._options = options or ServerOptions()
        self._clock = clock or SystemClock()
        # Hand-backs of claims whose caller left; held so they are not collected mid-way.
        self._hand_backs: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    @property
    def max_claim_jobs(self) -> int:
        """The most jobs one claim hands out: as many as surely fit in one response."""
        per_job = self._leases.limits.max_payload_bytes + _PER_JOB_OVERHEAD_BYTES
        fit = self._options.max_message_bytes // per_job
        return max(1, min(self._options.max_claim_jobs, fit))

    async def ClaimJobs(
        self, request: pb.ClaimJobsRequest, context: Context
    ) -> pb.ClaimJobsResponse:
        types = self._claim_types(request.types)
        if request.max_jobs < 0:
            raise InvalidJob("max_jobs", "must not be negative")
        limit = min(max(request.max_jobs, 1), self.max_claim_jobs)
        lease_ms = self._lease_ms(request.lease_ms)
        if request.wait_ms < 0:
            raise InvalidJob("wait_ms", "must not be negative")
        wait_ms = min(request.wait_ms, self._options.max_claim_wait_ms)
        remaining = context.time_remaining()
        if remaining is not None:
            # Jobs leased after the caller gave up would have to be handed
            # back: stop waiting before its deadline.
            wait_ms = max(0, min(wait_ms, int((remaining - _DEADLINE_MARGIN_S) * 1000)))
        # Once sent, a claim may lease jobs at any moment, so it is never
        # cancelled half-way: a caller that gives up would leave leases nobody
        # holds. It runs to its end shielded, and what it returns after the
        # caller left is handed back at once.
        claim = asyncio.ensure_future(
            self._leases.claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)
        )
        try:
            leases = await asyncio.shield(claim)
        except asyncio.CancelledError:
            claim.add_done_callback(self._hand_back_when_done)
            raise
        remaining = context.time_remaining()
        if leases and (context.cancelled() or (remaining is not None and remaining <= 0)):
            await asyncio.shield(self._start_hand_back(leases))
            return pb.ClaimJobsResponse()
        response = pb.ClaimJobsResponse()
        add_leases(response.leases, leases)
        return response

    async def SettleJobs(
        self, request: pb.SettleJobsRequest, context: Context
    ) -> pb.SettleJobsResponse:
        self._check_batch("outcomes", len(request.outcomes))
        now_ms = self._clock.now_ms()
        parsed: list[Outcome | None] = []
        for index, message in enumerate(request.outcomes):
            try:
                parsed.append(outcome_from_proto(message, index=index, now_ms=now_ms))
            except InvalidJob as error:
                # One malformed entry is that entry's problem: it is refused
                # alone and the rest of the batch still settles.
                _log.info("SettleJobs: refused %s", error)
                parsed.append(None)
        valid = [outcome for outcome in parsed if outcome is not None]
        applied = iter(await self._leases.settle(valid) if valid else [])
        accepted = [outcome is not None and next(applied) for outcome in parsed]
        return pb.SettleJobsResponse(accepted=accepted)

    async def RenewLeases(
        self, request: pb.RenewLeasesRequest, context: Context
    ) -> pb.RenewLeasesResponse:
        self._check_batch("leases", len(request.leases))
        pairs = lease_refs_from_proto(request.leases)
        lease_ms = self._lease_ms(request.lease_ms)
        states = await self._leases.renew(pairs, lease_ms=lease_ms) if pairs else []
        return pb.RenewLeasesResponse(states=[lease_state_to_proto(state) for state in states])

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

    def _start_hand_back(self, leases: Sequence[Lease]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self._hand_back(leases))
        self._hand_backs.add(task)
        task.add_done_callback(self._hand_backs.discard)
        return task

    async def _hand_back(self, leases: Sequence[Lease]) -> None:
        """RELEASE leases nobody will hold: the jobs are due again, their attempt given back."""
        outcomes = [
            Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.RELEASE)
            for lease in leases
        ]
        try:
            await self._leases.settle(outcomes)
        except Exception as error:
            # Unconfirmed leases expire without charging an attempt: nothing is lost.
            _log.warning("could not hand back %d lease(s) of a left claim: %s", len(leases), error)
        else:
            _log.info("handed back %d lease(s) of a claim whose caller left", len(leases))

    def _claim_types(self, types: Any) -> list[str]:
        unique = list(dict.fromkeys(types))
        if not unique:
            raise InvalidJob("types", "name at least one job type")
        if len(unique) > _MAX_CLAIM_TYPES:
            raise InvalidJob("types", f"name at most {_MAX_CLAIM_TYPES} job types")
        for index, job_type in enumerate(unique):
            try:
                validate_type(job_type)
            except InvalidJob as error:
                raise InvalidJob(f"types[{index}]", error.message) from None
        return unique

    def _lease_ms(self, requested: int) -> int:
        options = self._options
        if requested == 0:
            return options.default_lease_ms
        if not options.min_lease_ms <= requested <= options.max_lease_ms:
            raise InvalidJob(
                "lease_ms",
                f"must be between {options.min_lease_ms} and {options.max_lease_ms} (0: default)",
            )
        return requested

    def _check_batch(self, field: str, size: int) -> None:
        if size > self._leases.limits.max_batch_size:
            raise InvalidJob(
                field, f"a batch holds at most {self._leases.limits.max_batch_size} items"
            )
