"""WorkerService.Heartbeat and AdminService.ListWorkers on grpcio, over a real channel.

Each refused heartbeat is checked to list nothing; the worker's own
``last_seen_at`` is replaced by the store's time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from jobqueue.domain import (
    AdminService,
    EnqueueRequest,
    JobService,
    ManualClock,
    PresenceService,
    UuidV7Generator,
)
from jobqueue.grpc import (
    AdminServicer,
    JobServicer,
    StoreHealth,
    WorkerServicer,
    list_workers_seam,
    start_server,
)
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import admin_pb2 as apb
from mpataki.jobqueue.v1 import admin_pb2_grpc, jobqueue_pb2_grpc, worker_pb2_grpc
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests.grpc.conftest import TEST_LIMITS, TEST_OPTIONS

START_MS = 1_800_000_000_000


@dataclass
class Api:
    clock: ManualClock
    workers: worker_pb2_grpc.WorkerServiceAsyncStub
    admin: admin_pb2_grpc.AdminServiceAsyncStub
    jobs: jobqueue_pb2_grpc.JobServiceAsyncStub


async def _api(*, presence: bool) -> AsyncIterator[Api]:
    clock = ManualClock(START_MS)
    store = MemoryJobStore(clock=clock)
    service = JobService(store, clock=clock, ids=UuidV7Generator(), limits=TEST_LIMITS)
    use_case = PresenceService(store)
    server = await start_server(
        address="127.0.0.1:0",
        job_servicer=JobServicer(service, options=TEST_OPTIONS),
        worker_servicer=WorkerServicer(store, limits=TEST_LIMITS, options=TEST_OPTIONS),
        health=StoreHealth(store, services=[], interval_s=0.05, timeout_s=0.5),
        options=TEST_OPTIONS,
        admin_servicer=AdminServicer(
            AdminService(store), list_workers=list_workers_seam(use_case) if presence else None
        ),
    )
    await service.enqueue(EnqueueRequest(type="email"))
    await service.enqueue(EnqueueRequest(type="report"))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Api(
            clock,
            worker_pb2_grpc.WorkerServiceStub(channel),
            admin_pb2_grpc.AdminServiceStub(channel),
            jobqueue_pb2_grpc.JobServiceStub(channel),
        )
    finally:
        await channel.close(None)
        await server.stop(None)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for made in _api(presence=True):
        yield made


def info(worker_id: str = "host-7-abc", *types: str) -> wpb.WorkerInfo:
    return wpb.WorkerInfo(
        id=worker_id,
        host="host",
        pid=7,
        sdk="jobqueue-go/1.0.0",
        types=list(types or ("email",)),
        concurrency=4,
        busy=1,
        started_at=START_MS - 5_000,
        last_seen_at=1,
    )


async def test_a_heartbeat_lists_the_worker_with_the_store_time(api: Api) -> None:
    await api.workers.Heartbeat(wpb.HeartbeatRequest(worker=info(), ttl_ms=10_000))
    listed = (await api.admin.ListWorkers(apb.ListWorkersRequest())).workers
    expected = info()
    expected.last_seen_at = START_MS
    assert list(listed) == [expected]


async def test_stats_count_workers_per_type(api: Api) -> None:
    await api.workers.Heartbeat(wpb.HeartbeatRequest(worker=info("w1", "email")))
    api.clock.advance(1_500)
    stats = await api.jobs.GetQueueStats(pb.GetQueueStatsRequest())
    rows = {row.type: row for row in stats.types}
    assert (rows["email"].workers, rows["report"].workers) == (1, 0)
    assert rows["report"].oldest_pending_age_ms == 1_500


async def test_a_worker_leaves_the_list_when_its_ttl_passes_or_it_stops(api: Api) -> None:
    await api.workers.Heartbeat(wpb.HeartbeatRequest(worker=info("a"), ttl_ms=1_000))
    await api.workers.Heartbeat(wpb.HeartbeatRequest(worker=info("b"), ttl_ms=60_000))
    await api.workers.Heartbeat(wpb.HeartbeatRequest(worker=info("c"), ttl_ms=0))  # 30 s
    api.clock.advance(1_000)
    listed = (await api.admin.ListWorkers(apb.ListWorkersRequest())).workers
    assert [w.id for w in listed] == ["b", "c"]
    await api.workers.Heartbeat(wpb.HeartbeatRequest(worker=info("b"), stopping=True))
    api.clock.advance(29_000)
    assert [w.id for w in (await api.admin.ListWorkers(apb.ListWorkersRequest())).workers] == []


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (wpb.HeartbeatRequest(worker=info("bad id")), "worker.id"),
        (wpb.HeartbeatRequest(), "worker.id"),
        (wpb.HeartbeatRequest(worker=info(), ttl_ms=999), "ttl_ms"),
        (wpb.HeartbeatRequest(worker=info(), ttl_ms=600_001), "ttl_ms"),
        (wpb.HeartbeatRequest(worker=info("ok", "no spaces")), "type"),
    ],
)
async def test_a_bad_heartbeat_is_invalid_argument_and_lists_nothing(
    api: Api, request_: wpb.HeartbeatRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await api.workers.Heartbeat(request_)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in (raised.value.details() or "")
    assert (await api.admin.ListWorkers(apb.ListWorkersRequest())).workers == []


async def test_list_workers_without_presence_wired_is_unimplemented() -> None:
    async for api in _api(presence=False):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await api.admin.ListWorkers(apb.ListWorkersRequest())
        assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
