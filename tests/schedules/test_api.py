"""ScheduleService on the wire: an in-process gRPC server on a free loopback port, a memory store.

Every RPC round-trips through the servicer's mapping, and the domain's errors
come back as their status codes (INVALID_ARGUMENT, NOT_FOUND) with nothing stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from jobqueue.domain import ManualClock, UuidV7Generator
from jobqueue.grpc import ScheduleServicer, service_handler
from jobqueue.memory import MemoryJobStore
from jobqueue_server._schedules import schedule_service_for
from mpataki.jobqueue.v1 import schedule_pb2 as pb
from mpataki.jobqueue.v1 import schedule_pb2_grpc as pb_grpc


@dataclass
class Wire:
    stub: pb_grpc.ScheduleServiceAsyncStub
    jobs: MemoryJobStore
    clock: ManualClock


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    clock = ManualClock()
    jobs = MemoryJobStore(clock=clock)
    service = schedule_service_for(jobs, clock=clock, ids=UuidV7Generator())
    assert service is not None
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            service_handler(
                pb.DESCRIPTOR.services_by_name["ScheduleService"], ScheduleServicer(service)
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Wire(pb_grpc.ScheduleServiceStub(channel), jobs, clock)
    finally:
        await channel.close(None)
        await server.stop(None)


def nightly() -> pb.Schedule:
    return pb.Schedule(
        name="nightly report",
        cron="30 2 * * *",
        time_zone="Europe/Paris",
        template=pb.JobTemplate(type="report", payload=b"{}", headers={"a": "b"}, max_attempts=2),
        overlap=pb.OVERLAP_POLICY_BUFFER_ONE,
    )


async def test_every_rpc_round_trips(wire: Wire) -> None:
    created = (
        await wire.stub.CreateSchedule(pb.CreateScheduleRequest(schedule=nightly()))
    ).schedule
    assert created.id
    assert (created.cron, created.time_zone, created.overlap) == (
        "30 2 * * *",
        "Europe/Paris",
        pb.OVERLAP_POLICY_BUFFER_ONE,
    )
    assert dict(created.template.headers) == {"a": "b"}
    assert created.template.max_attempts == 2
    assert created.catchup_window_ms == 60_000  # 0 on the wire means the default
    assert created.created_at_ms == wire.clock.now_ms()
    assert not created.HasField("last_tick_ms")
    got = (await wire.stub.GetSchedule(pb.GetScheduleRequest(id=created.id))).schedule
    assert got == created
    listed = (await wire.stub.ListSchedules(pb.ListSchedulesRequest())).schedules
    assert [s.id for s in listed] == [created.id]
    paused = (await wire.stub.PauseSchedule(pb.PauseScheduleRequest(id=created.id))).schedule
    assert paused.paused
    resumed = (await wire.stub.ResumeSchedule(pb.ResumeScheduleRequest(id=created.id))).schedule
    assert not resumed.paused
    triggered = await wire.stub.TriggerSchedule(pb.TriggerScheduleRequest(id=created.id))
    job = await wire.jobs.get(triggered.job_id)
    assert job is not None
    assert (job.type, job.payload, job.max_attempts) == ("report", b"{}", 2)
    await wire.stub.DeleteSchedule(pb.DeleteScheduleRequest(id=created.id))
    assert (await wire.stub.ListSchedules(pb.ListSchedulesRequest())).schedules == []


async def test_an_interval_schedule_round_trips(wire: Wire) -> None:
    spec = pb.Schedule(name="often", interval_ms=5_000, template=pb.JobTemplate(type="ping"))
    created = (await wire.stub.CreateSchedule(pb.CreateScheduleRequest(schedule=spec))).schedule
    assert created.WhichOneof("spec") == "interval_ms"
    assert created.interval_ms == 5_000
    assert created.overlap == pb.OVERLAP_POLICY_SKIP  # unspecified means skip
    assert created.time_zone == "UTC"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "every day"}, "cron"),
        ({"time_zone": "Atlantis/Capital"}, "time_zone"),
        ({"name": ""}, "name"),
        ({"template": pb.JobTemplate(type="bad type!")}, "type"),
        ({"interval_ms": 10}, "interval_ms"),
        ({"catchup_window_ms": 10}, "catchup_window_ms"),
    ],
)
async def test_bad_input_is_invalid_argument_and_stores_nothing(
    wire: Wire, change: dict[str, object], field: str
) -> None:
    spec = nightly()
    for name, value in change.items():
        if isinstance(value, pb.JobTemplate):
            spec.template.CopyFrom(value)
        else:
            setattr(spec, name, value)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await wire.stub.CreateSchedule(pb.CreateScheduleRequest(schedule=spec))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in (raised.value.details() or "")
    assert (await wire.stub.ListSchedules(pb.ListSchedulesRequest())).schedules == []


async def test_no_schedule_is_invalid_argument(wire: Wire) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await wire.stub.CreateSchedule(pb.CreateScheduleRequest())
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("rpc", ["Get", "Pause", "Resume", "Trigger", "Delete"])
async def test_an_unknown_id_is_not_found(wire: Wire, rpc: str) -> None:
    request = getattr(pb, f"{rpc}ScheduleRequest")(id="0190f0f0-0000-7000-8000-000000000000")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await getattr(wire.stub, f"{rpc}Schedule")(request)
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("rpc", ["Get", "Pause", "Resume", "Trigger", "Delete"])
@pytest.mark.parametrize("schedule_id", ["", "nope", "0190f0f0-0000-7000-8000-00000000000Z"])
async def test_a_malformed_id_is_invalid_argument(wire: Wire, rpc: str, schedule_id: str) -> None:
    # As AdminService answers for a job id: bad input, not a schedule that happens to be missing.
    request = getattr(pb, f"{rpc}ScheduleRequest")(id=schedule_id)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await getattr(wire.stub, f"{rpc}Schedule")(request)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (raised.value.details() or "").startswith("id: ")
