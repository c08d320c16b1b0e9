"""WorkerService over gRPC: workers in any language lease jobs through the server."""

from __future__ import annotations

from typing import Any

import grpc

from jobqueue.domain import InvalidJob, JobStore, Limits, validate_type
from mpataki.jobqueue.v1 import worker_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2_grpc as pb_grpc

from ._mapping import (
    add_leases,
    lease_refs_from_proto,
    lease_state_to_proto,
    outcome_from_proto,
)
from ._options import ServerOptions

Context = grpc.aio.ServicerContext[Any, Any]

_MAX_CLAIM_TYPES = 1_000
_PER_JOB_OVERHEAD_BYTES = 16 * 1024
"""Room for a leased job's fields besides its payload (its last error is at most 8 KiB)."""
_DEADLINE_MARGIN_S = 0.25
"""A claim answers this long before the caller's deadline, so the leases reach it."""


class WorkerServicer(pb_grpc.WorkerServiceServicer):
    """Maps each RPC 1:1 onto ``JobStore.claim``, ``settle`` and ``renew``.

    A remote worker is checked like any other caller: ids, tokens, kinds,
    times and sizes are validated here, since the store trusts its input.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        limits: Limits | None = None,
        options: ServerOptions | None = None,
    ) -> None:
        self._store = store
        self._limits = limits or Limits()
        self._options = options or ServerOptions()

    @property
    def max_claim_jobs(self) -> int:
        """The most jobs one claim hands out: as many as surely fit in one response."""
        per_job = self._limits.max_payload_bytes + _PER_JOB_OVERHEAD_BYTES
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
            # Jobs leased after the caller gave up would sit RUNNING, unseen,
            # until their lease expired: stop waiting before its deadline.
            wait_ms = max(0, min(wait_ms, int((remaining - _DEADLINE_MARGIN_S) * 1000)))
        leases = await self._store.claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)
        response = pb.ClaimJobsResponse()
        add_leases(response.leases, leases)
        return response

    async def SettleJobs(
        self, request: pb.SettleJobsRequest, context: Context
    ) -> pb.SettleJobsResponse:
        self._check_batch("outcomes", len(request.outcomes))
        outcomes = [
            outcome_from_proto(message, index=index, limits=self._limits)
            for index, message in enumerate(request.outcomes)
        ]
        accepted = await self._store.settle(outcomes) if outcomes else []
        return pb.SettleJobsResponse(accepted=accepted)

    async def RenewLeases(
        self, request: pb.RenewLeasesRequest, context: Context
    ) -> pb.RenewLeasesResponse:
        self._check_batch("leases", len(request.leases))
        pairs = lease_refs_from_proto(request.leases)
        lease_ms = self._lease_ms(request.lease_ms)
        states = await self._store.renew(pairs, lease_ms=lease_ms) if pairs else []
        return pb.RenewLeasesResponse(states=[lease_state_to_proto(state) for state in states])

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
        if size > self._limits.max_batch_size:
            raise InvalidJob(field, f"a batch holds at most {self._limits.max_batch_size} items")
