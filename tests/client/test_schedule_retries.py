"""A retried CreateSchedule or TriggerSchedule after a lost reply does its work once.

The server below is the real ScheduleServicer on a memory store, except that
the reply of the first call of each of the two methods is lost after the call
did its work (the client sees UNAVAILABLE, as when a connection drops between
the server's commit and its answer). The SDK retries with the first attempt's
idempotency key, and the store answers with what that attempt stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from jobqueue.client import AsyncJobClient, JobClient
from jobqueue.domain import JobStatus, ManualClock, ScheduleService, UuidV7Generator
from jobqueue.grpc import ScheduleServicer, service_handler
from jobqueue.memory import MemoryJobStore
from jobqueue_server._schedules import schedule_service_for
from mpataki.jobqueue.v1 import schedule_pb2 as pb
from tests.client.conftest import FAST_RETRY

Context = grpc.aio.ServicerContext[Any, Any]


class LosingFirstReplies(ScheduleServicer):
    """Does every call's work; the first create's and the first trigger's replies are lost."""

    def __init__(self, service: ScheduleService) -> None:
        super().__init__(service)
        self.calls = {"CreateSchedule": 0, "TriggerSchedule": 0}

    async def _lose_first(self, method: str, context: Context) -> None:
        self.calls[method] += 1
        if self.calls[method] == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "reply lost (test)")

    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: Context
    ) -> pb.CreateScheduleResponse:
        reply = await super().CreateSchedule(request, context)
        await self._lose_first("CreateSchedule", context)
        return reply

    async def TriggerSchedule(
        self, request: pb.TriggerScheduleRequest, context: Context
    ) -> pb.TriggerScheduleResponse:
        reply = await super().TriggerSchedule(request, context)
        await self._lose_first("TriggerSchedule", context)
        return reply


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, MemoryJobStore, ScheduleService]]:
    jobs = MemoryJobStore(clock=ManualClock())
    service = schedule_service_for(jobs, clock=ManualClock(), ids=UuidV7Generator())
    assert service is not None
    server = grpc.aio.server()
    servicer = LosingFirstReplies(service)
    server.add_generic_rpc_handlers(
        [service_handler(pb.DESCRIPTOR.services_by_name["ScheduleService"], servicer)]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", jobs, service
    finally:
        await server.stop(None)


async def test_a_create_and_a_trigger_whose_replies_were_lost_are_done_once(
    served: tuple[str, MemoryJobStore, ScheduleService],
) -> None:
    target, jobs, service = served
    async with AsyncJobClient(target=target, retries=FAST_RETRY) as client:
        created = await client.create_schedule("s", "report", interval_s=3600, priority=5)
        assert [s.id for s in await service.list_schedules()] == [created.id]
        assert created.template.priority == 5
        job_id = await client.trigger_schedule(created.id)
    stored = await jobs.get(job_id)
    assert stored is not None
    assert (stored.status, stored.priority) == (JobStatus.PENDING, 5)
    assert (await jobs.stats()).total.pending == 1  # one job, not two


async def test_the_blocking_client_retries_them_as_safely(
    served: tuple[str, MemoryJobStore, ScheduleService],
) -> None:
    target, jobs, service = served

    def produce() -> None:  # in a thread: the server runs on this test's loop
        with JobClient(target=target, retries=FAST_RETRY) as client:
            created = client.create_schedule("s", "report", interval_s=3600)
            client.trigger_schedule(created.id)

    await asyncio.to_thread(produce)
    assert len(await service.list_schedules()) == 1
    assert (await jobs.stats()).total.pending == 1
