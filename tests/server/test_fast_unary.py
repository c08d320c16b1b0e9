"""Plain gRPC unary calls skip connectrpc (jobqueue.connect._fast); every other call still meets it.

Each test counts the calls handed to connectrpc, so a test that expects the
fast path fails if the call went the long way, and the other way round; the
answers (results, status codes, details) are the ones every path gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from jobqueue.connect import HttpServer, WireApp, start_http_server
from jobqueue.domain import JobService, JobStore, SystemClock, UuidV7Generator
from jobqueue.grpc import BearerTokenAuth, JobServicer, StoreHealth, WorkerServicer
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc as pb_grpc
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from mpataki.jobqueue.v1 import worker_pb2_grpc as wpb_grpc
from tests.grpc.conftest import TEST_LIMITS, TEST_OPTIONS
from tests.grpc.test_claims_and_cancels import HeldClaimStore

TOKEN = "fast-path-token-0123456789"
ENQUEUE = "/mpataki.jobqueue.v1.JobService/EnqueueJob"


@dataclass
class Observed:
    calls: list[tuple[str, grpc.StatusCode]] = field(default_factory=list)

    def observe(self, *, method: str, code: grpc.StatusCode, duration_s: float) -> None:
        self.calls.append((method, code))


class SlowEnqueue(JobServicer):
    """EnqueueJob that waits (bounded) and records whether it was cancelled."""

    def __init__(self, service: JobService) -> None:
        super().__init__(service, options=TEST_OPTIONS)
        self.cancelled = asyncio.Event()

    async def EnqueueJob(self, request: Any, context: Any) -> Any:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return pb.EnqueueJobResponse()


@dataclass
class Served:
    server: HttpServer
    health: StoreHealth
    fallbacks: list[str]
    observed: Observed
    job_servicer: JobServicer

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@asynccontextmanager
async def serve(
    *, auth: bool = False, slow: bool = False, store: JobStore | None = None
) -> AsyncIterator[Served]:
    store = store or MemoryJobStore()
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator(), limits=TEST_LIMITS)
    job_servicer = SlowEnqueue(service) if slow else JobServicer(service, options=TEST_OPTIONS)
    health = StoreHealth(store, services=[])
    observed = Observed()
    app = WireApp(
        job_servicer=job_servicer,
        worker_servicer=WorkerServicer(store, limits=TEST_LIMITS, options=TEST_OPTIONS),
        health=health,
        options=TEST_OPTIONS,
        auth=BearerTokenAuth([TOKEN]) if auth else None,
        observer=observed,
    )
    fallbacks: list[str] = []
    fast: Any = app._fast
    long_way = fast._fallback

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        fallbacks.append(scope["path"])
        await long_way(scope, receive, send)

    fast._fallback = counted
    await health.start()
    server = await start_http_server(
        app, address="127.0.0.1:0", max_message_bytes=TEST_OPTIONS.max_message_bytes, grace_s=1.0
    )
    try:
        yield Served(server, health, fallbacks, observed, job_servicer)
    finally:
        await health.shutdown()
        await server.stop(1.0)


async def test_a_plain_enqueue_takes_the_fast_path_and_is_observed() -> None:
    async with serve() as served, grpc.aio.insecure_channel(served.target) as channel:
        jobs = pb_grpc.JobServiceStub(channel)
        answer = await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t", payload=b"p"), timeout=10)
        again = await jobs.GetJob(pb.GetJobRequest(id=answer.job.id), timeout=10)
    assert answer.job.type == "t"
    assert answer.job.payload == b"p"
    assert answer.job.status == pb.JOB_STATUS_PENDING
    assert again.job == answer.job
    assert served.fallbacks == []
    assert served.observed.calls[0] == (ENQUEUE, grpc.StatusCode.OK)


async def test_an_error_on_the_fast_path_has_the_status_and_details_of_the_table() -> None:
    async with serve() as served, grpc.aio.insecure_channel(served.target) as channel:
        jobs = pb_grpc.JobServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as bad_type:
            await jobs.EnqueueJob(pb.EnqueueJobRequest(type="no spaces"), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await jobs.GetJob(pb.GetJobRequest(id="0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87"))
    assert bad_type.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_type.value.details() == "type: may contain only letters, digits and _ . : -"
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87" in (missing.value.details() or "")
    assert served.fallbacks == []
    assert served.observed.calls[0] == (ENQUEUE, grpc.StatusCode.INVALID_ARGUMENT)


async def test_compressed_and_undecodable_calls_go_to_connectrpc_and_claims_do_not() -> None:
    async with serve() as served, grpc.aio.insecure_channel(served.target) as channel:
        jobs = pb_grpc.JobServiceStub(channel)
        workers = wpb_grpc.WorkerServiceStub(channel)
        compressed = await jobs.EnqueueJob(
            pb.EnqueueJobRequest(type="t"), timeout=10, compression=grpc.Compression.Gzip
        )
        assert compressed.job.type == "t"
        garbage = channel.unary_unary(
            ENQUEUE, request_serializer=lambda _: b"\xff\xff\xff", response_deserializer=bytes
        )
        with pytest.raises(grpc.aio.AioRpcError) as undecodable:
            await garbage(b"", timeout=10)
        assert undecodable.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        waited = await workers.ClaimJobs(
            wpb.ClaimJobsRequest(types=["t"], max_jobs=1, wait_ms=50), timeout=10
        )
        assert len(waited.leases) == 1
        at_once = await workers.ClaimJobs(wpb.ClaimJobsRequest(types=["t"], max_jobs=1), timeout=10)
        assert len(at_once.leases) == 0
    assert served.fallbacks == [ENQUEUE, ENQUEUE]


async def test_a_closed_service_without_a_token_is_refused_by_connectrpc() -> None:
    async with serve(auth=True) as served, grpc.aio.insecure_channel(served.target) as channel:
        jobs = pb_grpc.JobServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        metadata = (("authorization", f"Bearer {TOKEN}"),)
        accepted = await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"), metadata=metadata)
        assert accepted.job.type == "t"
    assert served.fallbacks == [ENQUEUE]
    assert served.observed.calls == [
        (ENQUEUE, grpc.StatusCode.UNAUTHENTICATED),
        (ENQUEUE, grpc.StatusCode.OK),
    ]


async def test_the_callers_deadline_cancels_the_servicer_on_the_fast_path() -> None:
    async with serve(slow=True) as served, grpc.aio.insecure_channel(served.target) as channel:
        jobs = pb_grpc.JobServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"), timeout=0.3)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        slow = served.job_servicer
        assert isinstance(slow, SlowEnqueue)
        await asyncio.wait_for(slow.cancelled.wait(), timeout=10)
    assert served.fallbacks == []


@pytest.mark.parametrize("deadline_s", [None, 0.5], ids=["cancelled", "deadline"])
async def test_a_claim_whose_caller_left_hands_its_jobs_back(deadline_s: float | None) -> None:
    store = HeldClaimStore(MemoryJobStore())
    try:
        async with serve(store=store) as served, grpc.aio.insecure_channel(served.target) as ch:
            jobs = pb_grpc.JobServiceStub(ch)
            workers = wpb_grpc.WorkerServiceStub(ch)
            batch = [pb.EnqueueJobRequest(type="t", payload=b"p")] * 3
            ids = [
                job.id for job in (await jobs.EnqueueJobs(pb.EnqueueJobsRequest(jobs=batch))).jobs
            ]
            call = workers.ClaimJobs(
                wpb.ClaimJobsRequest(types=["t"], max_jobs=3), timeout=deadline_s
            )
            async with asyncio.timeout(10):
                await store.claimed.wait()
            if deadline_s is None:
                call.cancel()
            with pytest.raises((asyncio.CancelledError, grpc.aio.AioRpcError)):
                await call
            # A call after the caller left, on the same connection: the server has seen the reset.
            await jobs.GetJob(pb.GetJobRequest(id=ids[0]))
            await asyncio.sleep(0.2)
            store.release.set()
            states: list[tuple[int, int]] = []
            for _ in range(100):
                answers = [(await jobs.GetJob(pb.GetJobRequest(id=i))).job for i in ids]
                states = [(job.status, job.attempts) for job in answers]
                if all(status != pb.JOB_STATUS_RUNNING for status, _ in states):
                    break
                await asyncio.sleep(0.05)
        assert states == [(pb.JOB_STATUS_PENDING, 0)] * 3
        assert served.fallbacks == []
    finally:
        store.release.set()
        await store.close()
