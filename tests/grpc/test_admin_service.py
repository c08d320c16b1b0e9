"""AdminService on grpcio: every RPC's answers and status codes, over a real channel.

Each refused call is checked to change nothing in the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from jobqueue.domain import (
    AdminService,
    EnqueueRequest,
    GateService,
    Job,
    JobQuery,
    JobService,
    JobStatus,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.grpc import (
    AdminServicer,
    JobServicer,
    RunningServer,
    StoreHealth,
    WorkerServicer,
    start_server,
)
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import admin_pb2 as apb
from mpataki.jobqueue.v1 import admin_pb2_grpc
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from tests.grpc.conftest import TEST_LIMITS, TEST_OPTIONS

UNKNOWN_ID = "0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87"


@dataclass
class Seeded:
    """A store holding one job per interesting status, and their ids."""

    store: MemoryJobStore
    failed: str
    pending: str
    completed: str

    async def snapshot(self) -> list[object]:
        page = await self.store.list_jobs(JobQuery(limit=1_000))
        return list(page.jobs)


async def seed(store: MemoryJobStore) -> Seeded:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator(), limits=TEST_LIMITS)
    done = await service.enqueue(EnqueueRequest(type="done"))
    (lease,) = await store.claim(["done"], limit=1, lease_ms=60_000)
    await store.settle([Outcome(job_id=done.id, token=lease.token, kind=OutcomeKind.COMPLETE)])
    bad = await service.enqueue(EnqueueRequest(type="bad"))
    (lease,) = await store.claim(["bad"], limit=1, lease_ms=60_000)
    await store.settle(
        [Outcome(job_id=bad.id, token=lease.token, kind=OutcomeKind.FAIL, error="boom")]
    )
    waiting = await service.enqueue(EnqueueRequest(type="wait", execution_time_ms=2**40))
    return Seeded(store, failed=bad.id, pending=waiting.id, completed=done.id)


def admin_servicer(store: MemoryJobStore, *, gates: bool) -> AdminServicer:
    return AdminServicer(AdminService(store), gates=GateService(store) if gates else None)


async def serve(store: MemoryJobStore, *, gates: bool) -> RunningServer:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator(), limits=TEST_LIMITS)
    return await start_server(
        address="127.0.0.1:0",
        job_servicer=JobServicer(service, options=TEST_OPTIONS),
        worker_servicer=WorkerServicer(store, limits=TEST_LIMITS, options=TEST_OPTIONS),
        health=StoreHealth(store, services=[], interval_s=0.05, timeout_s=0.5),
        options=TEST_OPTIONS,
        admin_servicer=admin_servicer(store, gates=gates),
    )


@dataclass
class AdminApi:
    seeded: Seeded
    stub: admin_pb2_grpc.AdminServiceAsyncStub


async def _api(*, gates: bool) -> AsyncIterator[AdminApi]:
    store = MemoryJobStore()
    seeded = await seed(store)
    server = await serve(store, gates=gates)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        stub: admin_pb2_grpc.AdminServiceAsyncStub = admin_pb2_grpc.AdminServiceStub(channel)
        yield AdminApi(seeded, stub)
    finally:
        await channel.close(None)
        await server.stop(None)


@pytest.fixture
async def api() -> AsyncIterator[AdminApi]:
    async for made in _api(gates=True):
        yield made


@pytest.fixture
async def bare_api() -> AsyncIterator[AdminApi]:
    async for made in _api(gates=False):
        yield made


def bad_requests(seeded: Seeded) -> list[tuple[str, object, Any]]:
    """Every refusal AdminService makes, with its code: (rpc, request, code)."""
    bulk = apb.BulkJobsRequest
    failed = apb.JobFilter(status=pb.JOB_STATUS_FAILED)
    return [
        ("RetryJob", apb.RetryJobRequest(id=UNKNOWN_ID), grpc.StatusCode.NOT_FOUND),
        ("RetryJob", apb.RetryJobRequest(id="not-an-id"), grpc.StatusCode.INVALID_ARGUMENT),
        ("RetryJob", apb.RetryJobRequest(id=""), grpc.StatusCode.INVALID_ARGUMENT),
        ("RetryJob", apb.RetryJobRequest(id=seeded.pending), grpc.StatusCode.FAILED_PRECONDITION),
        (
            "RetryJob",
            apb.RetryJobRequest(id=seeded.completed),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        ("DeleteJob", apb.DeleteJobRequest(id=UNKNOWN_ID), grpc.StatusCode.NOT_FOUND),
        ("DeleteJob", apb.DeleteJobRequest(id="x"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            "DeleteJob",
            apb.DeleteJobRequest(id=seeded.pending),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        ("BulkJobs", bulk(filter=failed), grpc.StatusCode.INVALID_ARGUMENT),
        (
            "BulkJobs",
            bulk(action=apb.BulkAction.ValueType(9), filter=failed),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "BulkJobs",
            bulk(action=apb.BULK_ACTION_DELETE, filter=failed, page_token="forged"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "BulkJobs",
            bulk(action=apb.BULK_ACTION_DELETE, filter=failed, limit=10_001),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "BulkJobs",
            bulk(action=apb.BULK_ACTION_DELETE, filter=failed, limit=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "BulkJobs",
            bulk(
                action=apb.BULK_ACTION_RETRY,
                filter=apb.JobFilter(status=pb.JobStatus.ValueType(17)),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "BulkJobs",
            bulk(action=apb.BULK_ACTION_RETRY, filter=apb.JobFilter(type="")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        ("PauseType", apb.PauseTypeRequest(type=""), grpc.StatusCode.INVALID_ARGUMENT),
    ]


async def test_every_refusal_has_its_code_and_changes_nothing(api: AdminApi) -> None:
    before = await api.seeded.snapshot()
    for rpc, request, code in bad_requests(api.seeded):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(api.stub, rpc)(request)
        assert caught.value.code() == code, (rpc, request, caught.value.details())
    assert await api.seeded.snapshot() == before


async def test_retry_and_delete_answer_the_job(api: AdminApi) -> None:
    retried = await api.stub.RetryJob(apb.RetryJobRequest(id=api.seeded.failed))
    assert retried.job.status == pb.JOB_STATUS_PENDING
    assert retried.job.attempts == 0
    assert retried.job.last_error == "boom"
    deleted = await api.stub.DeleteJob(apb.DeleteJobRequest(id=api.seeded.completed))
    assert deleted.job.status == pb.JOB_STATUS_COMPLETED
    assert await api.seeded.store.get(api.seeded.completed) is None


async def test_bulk_pages_until_the_token_is_empty(api: AdminApi) -> None:
    store = api.seeded.store
    now = 1
    jobs = [
        Job(
            id=f"0190c3a2-7d5e-7b1c-9a4f-{i:012x}",
            type="many",
            payload=b"",
            status=JobStatus.PENDING,
            execution_time_ms=now,
            created_at=now,
            updated_at=now,
        )
        for i in range(25)
    ]
    await store.add(jobs)
    request = apb.BulkJobsRequest(
        action=apb.BULK_ACTION_CANCEL, filter=apb.JobFilter(type="many"), limit=10
    )
    pages = []
    while True:
        answer = await api.stub.BulkJobs(request)
        pages.append((answer.matched, answer.changed))
        if not answer.next_page_token:
            break
        request.page_token = answer.next_page_token
    assert sum(changed for _, changed in pages) == 25
    assert all(matched <= 10 for matched, _ in pages)
    cancelled = await store.list_jobs(JobQuery(type="many", status=JobStatus.CANCELLED))
    assert len(cancelled.jobs) == 25


async def test_pause_and_resume_call_the_gates(api: AdminApi) -> None:
    assert (await api.stub.PauseType(apb.PauseTypeRequest(type="bad"))).changed
    assert not (await api.stub.PauseType(apb.PauseTypeRequest(type="bad"))).changed
    assert (await api.stub.ResumeType(apb.ResumeTypeRequest(type="bad"))).changed


async def test_rpcs_without_their_use_case_are_unimplemented(bare_api: AdminApi) -> None:
    stub = bare_api.stub
    calls: list[tuple[Any, object]] = [
        (stub.PauseType, apb.PauseTypeRequest(type="a")),
        (stub.ResumeType, apb.ResumeTypeRequest(type="a")),
        (stub.ListWorkers, apb.ListWorkersRequest()),
    ]
    for rpc, request in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await rpc(request)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
