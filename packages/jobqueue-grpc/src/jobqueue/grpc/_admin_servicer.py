"""AdminService over gRPC (and Connect, which calls the same servicer).

RetryJob, DeleteJob and BulkJobs map onto the domain's ``AdminService``.
PauseType and ResumeType call a ``GateService`` and ListWorkers a
``ListWorkers`` seam when the server hands them in; without one those RPCs
answer UNIMPLEMENTED (``NotServedHere``), so the service can be registered
whole while its parts land. Errors go through the one status table, as for
every servicer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from jobqueue.domain import AdminService, BulkAction, GateService, InvalidJob, JobFilter
from mpataki.jobqueue.v1 import admin_pb2 as pb

from ._gates_mapping import limits_from_proto, limits_to_proto
from ._mapping import job_to_proto, status_filter_from_proto
from ._status import NotServedHere

Context = grpc.aio.ServicerContext[Any, Any]

ListWorkers = Callable[[pb.ListWorkersRequest], Awaitable[pb.ListWorkersResponse]]
"""The seam ListWorkers answers through: the worker presence use case, mapped to its reply."""


def job_filter_from_proto(message: pb.JobFilter) -> JobFilter:
    """The domain filter; an unset field matches everything, an unknown status is refused."""
    return JobFilter(
        type=message.type if message.HasField("type") else None,
        status=status_filter_from_proto(message.status),
        updated_before_ms=message.updated_before_ms
        if message.HasField("updated_before_ms")
        else None,
    )


class AdminServicer:
    """Maps each AdminService RPC onto a use case; the domain checks every input."""

    def __init__(
        self,
        service: AdminService,
        *,
        gates: GateService | None = None,
        list_workers: ListWorkers | None = None,
    ) -> None:
        self._service = service
        self._gates = gates
        self._list_workers = list_workers

    async def RetryJob(self, request: pb.RetryJobRequest, context: Context) -> pb.RetryJobResponse:
        return pb.RetryJobResponse(job=job_to_proto(await self._service.retry(request.id)))

    async def DeleteJob(
        self, request: pb.DeleteJobRequest, context: Context
    ) -> pb.DeleteJobResponse:
        return pb.DeleteJobResponse(job=job_to_proto(await self._service.delete(request.id)))

    async def BulkJobs(self, request: pb.BulkJobsRequest, context: Context) -> pb.BulkJobsResponse:
        if request.action == pb.BULK_ACTION_UNSPECIFIED:
            raise InvalidJob("action", "required: RETRY, CANCEL or DELETE")
        try:
            action = BulkAction(request.action)
        except ValueError:
            raise InvalidJob("action", f"{request.action} is not a known BulkAction") from None
        result = await self._service.bulk(
            action,
            job_filter_from_proto(request.filter),
            limit=request.limit,
            cursor=request.page_token,
        )
        return pb.BulkJobsResponse(
            matched=result.matched, changed=result.changed, next_page_token=result.next_cursor
        )

    async def PauseType(
        self, request: pb.PauseTypeRequest, context: Context
    ) -> pb.PauseTypeResponse:
        if self._gates is None:
            raise NotServedHere("PauseType")
        return pb.PauseTypeResponse(changed=await self._gates.pause_type(request.type))

    async def ResumeType(
        self, request: pb.ResumeTypeRequest, context: Context
    ) -> pb.ResumeTypeResponse:
        if self._gates is None:
            raise NotServedHere("ResumeType")
        return pb.ResumeTypeResponse(changed=await self._gates.resume_type(request.type))

    async def SetTypeLimits(
        self, request: pb.SetTypeLimitsRequest, context: Context
    ) -> pb.SetTypeLimitsResponse:
        if self._gates is None:
            raise NotServedHere("SetTypeLimits")
        await self._gates.set_type_limits(request.type, limits_from_proto(request.limits))
        now = await self._gates.type_limits(request.type)
        return pb.SetTypeLimitsResponse(limits=limits_to_proto(now))

    async def GetTypeLimits(
        self, request: pb.GetTypeLimitsRequest, context: Context
    ) -> pb.GetTypeLimitsResponse:
        if self._gates is None:
            raise NotServedHere("GetTypeLimits")
        limits = await self._gates.type_limits(request.type)
        return pb.GetTypeLimitsResponse(limits=limits_to_proto(limits))

    async def ListWorkers(
        self, request: pb.ListWorkersRequest, context: Context
    ) -> pb.ListWorkersResponse:
        if self._list_workers is None:
            raise NotServedHere("ListWorkers")
        return await self._list_workers(request)
