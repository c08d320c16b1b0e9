"""JobService over gRPC: producers and operators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from jobqueue.domain import JobService
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc as pb_grpc

from ._mapping import (
    add_jobs,
    enqueue_request_from_proto,
    fill_job,
    stats_to_proto,
    status_filter_from_proto,
)
from ._options import ServerOptions

Context = grpc.aio.ServicerContext[Any, Any]

_RESPONSE_MARGIN_BYTES = 4096


class JobServicer(pb_grpc.JobServiceServicer):
    """Maps each RPC onto a ``JobService`` use case; the domain checks every input.

    Errors are not handled here: ``service_handler`` turns whatever a method
    raises into a status through the one table in ``_status``.
    """

    def __init__(self, service: JobService, *, options: ServerOptions | None = None) -> None:
        self._service = service
        self._options = options or ServerOptions()

    async def EnqueueJob(
        self, request: pb.EnqueueJobRequest, context: Context
    ) -> pb.EnqueueJobResponse:
        job = await self._service.enqueue(enqueue_request_from_proto(request))
        response = pb.EnqueueJobResponse()
        fill_job(response.job, job)  # in place: pb.X(job=...) would copy the message
        return response

    async def EnqueueJobs(
        self, request: pb.EnqueueJobsRequest, context: Context
    ) -> pb.EnqueueJobsResponse:
        jobs = await self._service.enqueue_many(
            [enqueue_request_from_proto(item) for item in request.jobs],
            idempotency_key=request.idempotency_key
            if request.HasField("idempotency_key")
            else None,
        )
        response = pb.EnqueueJobsResponse()
        add_jobs(response.jobs, jobs)
        return response

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        response = pb.GetJobResponse()
        fill_job(response.job, await self._service.get(request.id))
        return response

    async def CancelJob(
        self, request: pb.CancelJobRequest, context: Context
    ) -> pb.CancelJobResponse:
        response = pb.CancelJobResponse()
        fill_job(response.job, await self._service.cancel(request.id))
        return response

    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        status = status_filter_from_proto(request.status)
        job_type = request.type if request.HasField("type") else None
        page_size = request.page_size
        budget = self._options.max_message_bytes - _RESPONSE_MARGIN_BYTES
        while True:
            page = await self._service.list_jobs(
                job_type=job_type, status=status, page_size=page_size, cursor=request.page_token
            )
            response = pb.ListJobsResponse(next_page_token=page.next_cursor)
            add_jobs(response.jobs, page.jobs)
            # Big payloads can make a page outgrow the message limit, and the
            # caller could do nothing about the error; a smaller page from the
            # same position is still a correct page, with a token to go on.
            if response.ByteSize() <= budget or len(page.jobs) <= 1:
                return response
            page_size = len(page.jobs) // 2

    async def GetQueueStats(
        self, request: pb.GetQueueStatsRequest, context: Context
    ) -> pb.GetQueueStatsResponse:
        return stats_to_proto(await self._service.stats())

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Context
    ) -> AsyncIterator[pb.WatchJobResponse]:
        async for job in self._service.watch(request.id):
            response = pb.WatchJobResponse()
            fill_job(response.job, job)
            yield response
