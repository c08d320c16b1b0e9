"""AdminService on the wire app: the same answers and codes as grpcio, on every protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from google.protobuf.message_factory import GetMessageClass

from jobqueue.connect import WireApp, start_http_server
from jobqueue.domain import JobService, SystemClock, UuidV7Generator
from jobqueue.grpc import JobServicer, StoreHealth, WorkerServicer
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import admin_pb2 as apb
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from tests.grpc.conftest import TEST_LIMITS, TEST_OPTIONS
from tests.grpc.test_admin_service import Seeded, admin_servicer, bad_requests, seed
from tests.server._wire import WIRES, Wire, wire_client


def admin_method(name: str) -> MethodInfo[Any, Any]:
    descriptor = apb.DESCRIPTOR.services_by_name["AdminService"].methods_by_name[name]
    return MethodInfo(
        name=name,
        service_name=descriptor.containing_service.full_name,
        input=GetMessageClass(descriptor.input_type),
        output=GetMessageClass(descriptor.output_type),
        idempotency_level=IdempotencyLevel.UNKNOWN,
        stream_type=StreamType.UNARY,
    )


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Seeded]]:
    store = MemoryJobStore()
    seeded = await seed(store)
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator(), limits=TEST_LIMITS)
    health = StoreHealth(store, services=[], interval_s=0.05, timeout_s=0.5)
    app = WireApp(
        job_servicer=JobServicer(service, options=TEST_OPTIONS),
        worker_servicer=WorkerServicer(store, limits=TEST_LIMITS, options=TEST_OPTIONS),
        health=health,
        options=TEST_OPTIONS,
        admin_servicer=admin_servicer(store, gates=False),
    )
    await health.start()
    server = await start_http_server(
        app, address="127.0.0.1:0", tls=None, max_message_bytes=1 << 20, grace_s=1.0
    )
    try:
        yield f"http://127.0.0.1:{server.port}", seeded
    finally:
        await health.shutdown()
        await server.stop(1.0)


@pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])
async def test_every_wire_answers_admin_refusals_alike_and_changes_nothing(
    served: tuple[str, Seeded], wire: Wire
) -> None:
    url, seeded = served
    before = await seeded.snapshot()
    refusals = [case for case in bad_requests(seeded) if case[0] != "PauseType"]
    refusals += [
        ("PauseType", apb.PauseTypeRequest(type="a"), Code.UNIMPLEMENTED),
        ("ListWorkers", apb.ListWorkersRequest(), Code.UNIMPLEMENTED),
    ]
    async with wire_client(url, wire) as client:
        for rpc, request, code in refusals:
            with pytest.raises(ConnectError) as caught:
                await client.client.execute_unary(
                    request=request, method=admin_method(rpc), timeout_ms=10_000
                )
            assert caught.value.code is Code[code.name], (rpc, caught.value.message)
    assert await seeded.snapshot() == before


@pytest.mark.parametrize("wire", [WIRES[0], WIRES[-1]], ids=[WIRES[0].name, WIRES[-1].name])
async def test_retry_delete_and_bulk_over_connect(served: tuple[str, Seeded], wire: Wire) -> None:
    url, seeded = served
    async with wire_client(url, wire) as client:

        async def call(rpc: str, request: Any) -> Any:
            return await client.client.execute_unary(
                request=request, method=admin_method(rpc), timeout_ms=10_000
            )

        retried = await call("RetryJob", apb.RetryJobRequest(id=seeded.failed))
        assert retried.job.status == pb.JOB_STATUS_PENDING
        deleted = await call("DeleteJob", apb.DeleteJobRequest(id=seeded.completed))
        assert deleted.job.id == seeded.completed
        bulk = await call(
            "BulkJobs",
            apb.BulkJobsRequest(
                action=apb.BULK_ACTION_CANCEL, filter=apb.JobFilter(status=pb.JOB_STATUS_PENDING)
            ),
        )
        assert (bulk.matched, bulk.changed, bulk.next_page_token) == (2, 2, "")
