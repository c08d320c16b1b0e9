"""The worker side of issue 11 on the default server stack (connectrpc on h2corn).

The same WorkerServicer runs behind both stacks, but each stack refuses an
oversized message in its own words and cancels a left call its own way: a
GrpcSource must fail an un-receivable result alone, follow cancellations, and
a left claim must hand its jobs back on this one too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from jobqueue.domain import Outcome, OutcomeKind
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.worker import GrpcSource
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2_grpc
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests.grpc.test_claims_and_cancels import (
    HeldClaimStore,
    _cancel_latencies,
    _collect,
    _until_live,
)
from tests.server._wire import WireServer, start_wire

TWO_MB = 2 * 1024 * 1024


@dataclass
class WireApi:
    jobs: jobqueue_pb2_grpc.JobServiceAsyncStub
    workers: worker_pb2_grpc.WorkerServiceAsyncStub


@pytest.fixture
async def wire() -> AsyncIterator[tuple[WireServer, WireApi]]:
    store = MemoryJobStore(MemoryStoreSettings(max_jobs=1_000))
    server = await start_wire(store)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.server.port}")
    api = WireApi(
        jobqueue_pb2_grpc.JobServiceStub(channel), worker_pb2_grpc.WorkerServiceStub(channel)
    )
    try:
        yield server, api
    finally:
        await channel.close(None)
        await server.stop()
        await store.close()


async def test_grpc_source_fails_an_unreceivable_result_alone(
    wire: tuple[WireServer, WireApi],
) -> None:
    server, api = wire
    requests = [pb.EnqueueJobRequest(type="t", payload=b"p")] * 5
    enqueued = await api.jobs.EnqueueJobs(pb.EnqueueJobsRequest(jobs=requests))
    ids = [job.id for job in enqueued.jobs]
    source = GrpcSource(f"127.0.0.1:{server.server.port}", timeout_s=5)
    try:
        leases = await source.claim(["t"], limit=5, lease_ms=30_000, wait_ms=0)
        big = leases[2].job.id
        outcomes = [
            Outcome(
                job_id=lease.job.id,
                token=lease.token,
                kind=OutcomeKind.COMPLETE,
                result=b"x" * TWO_MB if lease.job.id == big else b"ok",
            )
            for lease in leases
        ]
        assert await source.settle(outcomes) == [True] * 5
    finally:
        await source.close()
    for job_id in ids:
        job = (await api.jobs.GetJob(pb.GetJobRequest(id=job_id))).job
        if job_id == big:
            assert (job.status, job.attempts) == (pb.JOB_STATUS_FAILED, 1)
            assert job.last_error.startswith(f"result too large: {TWO_MB} bytes > limit of ")
        else:
            assert (job.status, job.attempts, job.result) == (pb.JOB_STATUS_COMPLETED, 1, b"ok")


async def test_grpc_source_hears_cancellations(wire: tuple[WireServer, WireApi]) -> None:
    server, api = wire
    source = GrpcSource(f"127.0.0.1:{server.server.port}", timeout_s=5)
    received: asyncio.Queue[str] = asyncio.Queue()
    reader = asyncio.create_task(_collect(source.cancellations(), received))
    try:
        await _until_live(api, received)
        (latency,) = await _cancel_latencies(api, received, 1)
        assert latency < 1.0
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await source.close()


async def test_a_cancelled_claim_hands_its_jobs_back() -> None:
    store = HeldClaimStore(MemoryJobStore(MemoryStoreSettings(max_jobs=1_000)))
    server = await start_wire(store)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.server.port}")
    jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
    workers = worker_pb2_grpc.WorkerServiceStub(channel)
    try:
        job = (await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t", payload=b"p"))).job
        call = workers.ClaimJobs(wpb.ClaimJobsRequest(types=["t"]))
        async with asyncio.timeout(10):
            await store.claimed.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await jobs.GetJob(pb.GetJobRequest(id=job.id))
        await asyncio.sleep(0.2)
        store.release.set()
        state = (0, 0)
        for _ in range(100):
            found = (await jobs.GetJob(pb.GetJobRequest(id=job.id))).job
            state = (found.status, found.attempts)
            if found.status != pb.JOB_STATUS_RUNNING:
                break
            await asyncio.sleep(0.05)
        assert state == (pb.JOB_STATUS_PENDING, 0)
    finally:
        store.release.set()
        await channel.close(None)
        await server.stop()
        await store.close()
