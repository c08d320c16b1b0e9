"""ScheduleService over gRPC: recurring schedules, mapped onto the domain's ScheduleService.

Errors are not handled here: ``service_handler`` turns whatever a method
raises into a status through the one table in ``_status`` (InvalidJob is
INVALID_ARGUMENT, ScheduleNotFound NOT_FOUND).
"""

from __future__ import annotations

from typing import Any

import grpc

from jobqueue.domain import (
    DEFAULT_CATCHUP_WINDOW_MS,
    InvalidJob,
    JobTemplate,
    OverlapPolicy,
    Schedule,
    ScheduleService,
)
from mpataki.jobqueue.v1 import schedule_pb2 as pb
from mpataki.jobqueue.v1 import schedule_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]

_OVERLAP_FROM_PROTO = {
    pb.OVERLAP_POLICY_UNSPECIFIED: OverlapPolicy.SKIP,
    pb.OVERLAP_POLICY_SKIP: OverlapPolicy.SKIP,
    pb.OVERLAP_POLICY_BUFFER_ONE: OverlapPolicy.BUFFER_ONE,
    pb.OVERLAP_POLICY_ALLOW_ALL: OverlapPolicy.ALLOW_ALL,
}
_OVERLAP_TO_PROTO = {
    OverlapPolicy.SKIP: pb.OVERLAP_POLICY_SKIP,
    OverlapPolicy.BUFFER_ONE: pb.OVERLAP_POLICY_BUFFER_ONE,
    OverlapPolicy.ALLOW_ALL: pb.OVERLAP_POLICY_ALLOW_ALL,
}


def schedule_to_proto(schedule: Schedule) -> pb.Schedule:
    template = schedule.template
    message = pb.Schedule(
        id=schedule.id,
        name=schedule.name,
        time_zone=schedule.time_zone,
        template=pb.JobTemplate(
            type=template.type,
            payload=template.payload,
            headers=dict(template.headers),
            max_attempts=template.max_attempts,
            priority=template.priority,
            limit_key=template.limit_key,
        ),
        overlap=_OVERLAP_TO_PROTO[schedule.overlap],
        catchup_window_ms=schedule.catchup_window_ms,
        paused=schedule.paused,
        created_at_ms=schedule.created_at,
        last_tick_ms=schedule.last_tick_ms,
        next_tick_ms=None if schedule.paused else schedule.next_tick_ms,
        last_job_id=schedule.last_job_id,
        fired=schedule.fired,
        skipped_overlap=schedule.skipped_overlap,
        missed=schedule.missed,
    )
    if schedule.cron is not None:
        message.cron = schedule.cron
    elif schedule.interval_ms is not None:
        message.interval_ms = schedule.interval_ms
    return message


class ScheduleServicer(pb_grpc.ScheduleServiceServicer):
    """Maps each RPC onto a ``ScheduleService`` use case; the domain checks every input."""

    def __init__(self, service: ScheduleService) -> None:
        self._service = service

    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: Context
    ) -> pb.CreateScheduleResponse:
        if not request.HasField("schedule"):
            raise InvalidJob("schedule", "required")
        spec = request.schedule
        overlap = _OVERLAP_FROM_PROTO.get(spec.overlap)
        if overlap is None:
            raise InvalidJob("overlap", f"unknown overlap policy {spec.overlap}")
        template = spec.template
        created = await self._service.create(
            name=spec.name,
            template=JobTemplate(
                type=template.type,
                payload=template.payload,
                headers=dict(template.headers),
                max_attempts=template.max_attempts if template.HasField("max_attempts") else None,
                priority=template.priority,
                limit_key=template.limit_key if template.HasField("limit_key") else None,
            ),
            cron=spec.cron if spec.HasField("cron") else None,
            interval_ms=spec.interval_ms if spec.HasField("interval_ms") else None,
            time_zone=spec.time_zone or "UTC",
            overlap=overlap,
            catchup_window_ms=spec.catchup_window_ms or DEFAULT_CATCHUP_WINDOW_MS,
            paused=spec.paused,
            idempotency_key=(
                request.idempotency_key if request.HasField("idempotency_key") else None
            ),
        )
        return pb.CreateScheduleResponse(schedule=schedule_to_proto(created))

    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: Context
    ) -> pb.ListSchedulesResponse:
        found = await self._service.list_schedules()
        return pb.ListSchedulesResponse(schedules=[schedule_to_proto(s) for s in found])

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: Context
    ) -> pb.GetScheduleResponse:
        return pb.GetScheduleResponse(
            schedule=schedule_to_proto(await self._service.get(request.id))
        )

    async def PauseSchedule(
        self, request: pb.PauseScheduleRequest, context: Context
    ) -> pb.PauseScheduleResponse:
        return pb.PauseScheduleResponse(
            schedule=schedule_to_proto(await self._service.pause(request.id))
        )

    async def ResumeSchedule(
        self, request: pb.ResumeScheduleRequest, context: Context
    ) -> pb.ResumeScheduleResponse:
        return pb.ResumeScheduleResponse(
            schedule=schedule_to_proto(await self._service.resume(request.id))
        )

    async def TriggerSchedule(
        self, request: pb.TriggerScheduleRequest, context: Context
    ) -> pb.TriggerScheduleResponse:
        key = request.idempotency_key if request.HasField("idempotency_key") else None
        job = await self._service.trigger(request.id, idempotency_key=key)
        return pb.TriggerScheduleResponse(job_id=job.id)

    async def DeleteSchedule(
        self, request: pb.DeleteScheduleRequest, context: Context
    ) -> pb.DeleteScheduleResponse:
        await self._service.delete(request.id)
        return pb.DeleteScheduleResponse()
