"""An in-process server on a free loopback port, over a memory store, and a real channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import grpc
import pytest

from jobqueue.domain import (
    AdminService,
    AdminStore,
    GateService,
    JobService,
    JobStore,
    Limits,
    PresenceService,
    PresenceStore,
    SystemClock,
    TypeGates,
    UuidV7Generator,
)
from jobqueue.grpc import (
    JOB_SERVICE_NAME,
    WORKER_SERVICE_NAME,
    AdminServicer,
    JobServicer,
    RunningServer,
    ScheduleServicer,
    ServerOptions,
    ServerTls,
    StoreHealth,
    WorkerServicer,
    list_workers_seam,
    start_server,
)
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue_server._schedules import schedule_service_for
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2_grpc
from tests.grpc._fakes import FaultyStore

TEST_LIMITS = Limits(max_payload_bytes=1024, max_batch_size=50, max_page_size=100)
TEST_OPTIONS = ServerOptions(
    max_message_bytes=1024 * 1024,
    max_claim_wait_ms=2_000,
    health_check_interval_s=0.05,
    health_check_timeout_s=0.5,
)


@dataclass
class Api:
    """Everything a test needs: the store behind the server and stubs on a real channel."""

    store: FaultyStore
    server: RunningServer
    channel: grpc.aio.Channel
    jobs: jobqueue_pb2_grpc.JobServiceAsyncStub
    workers: worker_pb2_grpc.WorkerServiceAsyncStub


def operator_servicers(store: JobStore) -> tuple[AdminServicer, ScheduleServicer | None]:
    """AdminService and ScheduleService over ``store``, wired as the server's container does.

    ScheduleService only over a store that keeps schedules (not a test's wrapper).
    """
    # Both stores implement every port; a test's wrapper may not, and then
    # those RPCs fail, as they would on such a store in the server.
    admin = AdminServicer(
        AdminService(cast("AdminStore", store)),
        gates=GateService(cast("TypeGates", store)),
        list_workers=list_workers_seam(PresenceService(cast("PresenceStore", store))),
    )
    schedules = schedule_service_for(store, clock=SystemClock(), ids=UuidV7Generator())
    return admin, None if schedules is None else ScheduleServicer(schedules)


async def start_api(
    store: JobStore,
    *,
    limits: Limits = TEST_LIMITS,
    options: ServerOptions = TEST_OPTIONS,
    tls: ServerTls | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
) -> RunningServer:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator(), limits=limits)
    admin, schedules = operator_servicers(store)
    return await start_server(
        address="127.0.0.1:0",
        job_servicer=JobServicer(service, options=options),
        worker_servicer=WorkerServicer(store, limits=limits, options=options),
        health=StoreHealth(
            store,
            services=[JOB_SERVICE_NAME, WORKER_SERVICE_NAME],
            interval_s=options.health_check_interval_s,
            timeout_s=options.health_check_timeout_s,
        ),
        options=options,
        tls=tls,
        interceptors=interceptors,
        admin_servicer=admin,
        schedule_servicer=schedules,
    )


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    store = FaultyStore(MemoryJobStore(MemoryStoreSettings(max_jobs=1_000)))
    server = await start_api(store)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Api(
            store=store,
            server=server,
            channel=channel,
            jobs=jobqueue_pb2_grpc.JobServiceStub(channel),
            workers=worker_pb2_grpc.WorkerServiceStub(channel),
        )
    finally:
        await channel.close(None)
        await server.stop(None)
        await store.close()
