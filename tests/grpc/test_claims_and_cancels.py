"""ClaimJobs never strands leases; cancels reach workers through the server at once (issue 11).

A claim whose caller left (cancelled, or past its deadline) after the store had
leased its jobs hands them straight back, attempt and all. WatchCancellations
streams the id of each running job whose cancel is requested, so a worker
behind the server learns of it within a second instead of at its next
heartbeat; GrpcSource.cancellations follows that stream across reconnects.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

import grpc
import pytest

from jobqueue.domain import JobService, JobStore, Lease, SystemClock, UuidV7Generator
from jobqueue.grpc import (
    JOB_SERVICE_NAME,
    WORKER_SERVICE_NAME,
    JobServicer,
    RunningServer,
    StoreHealth,
    WorkerServicer,
    start_server,
)
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import GrpcSource
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2_grpc
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests.grpc._fakes import FaultyStore
from tests.grpc.conftest import TEST_LIMITS, TEST_OPTIONS, Api, start_api
from tests.grpc.test_status_codes import expect_status

CANCEL_BOUND_S = 1.0
"""The issue's figure for a cancel to reach a worker through the server."""

ClaimCall = grpc.aio.UnaryUnaryCall[wpb.ClaimJobsRequest, wpb.ClaimJobsResponse]


class Stubs(Protocol):
    """The two API stubs the helpers below call, on whichever server."""

    @property
    def jobs(self) -> jobqueue_pb2_grpc.JobServiceAsyncStub: ...

    @property
    def workers(self) -> worker_pb2_grpc.WorkerServiceAsyncStub: ...


class HeldClaimStore(FaultyStore):
    """A store whose claims, once they have leased their jobs, wait for ``release``.

    That is the moment a lost reply is made of: the jobs are leased, and the
    caller may leave before the answer reaches it.
    """

    def __init__(self, inner: JobStore) -> None:
        super().__init__(inner)
        self.claimed = asyncio.Event()
        self.release = asyncio.Event()

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Lease]:
        leases = await super().claim(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)
        if leases:
            self.claimed.set()
            await self.release.wait()
        return leases


async def _cancel(call: ClaimCall) -> None:
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def _miss_the_deadline(call: ClaimCall) -> None:
    await expect_status(call, grpc.StatusCode.DEADLINE_EXCEEDED)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def held_store(request: pytest.FixtureRequest) -> HeldClaimStore:
    if request.param == "redis":
        settings = RedisStoreSettings(
            url=request.getfixturevalue("redis_url"),
            key_prefix=request.getfixturevalue("key_prefix").rstrip(":"),
        )
        return HeldClaimStore(RedisJobStore(settings))
    return HeldClaimStore(MemoryJobStore(MemoryStoreSettings(max_jobs=1_000)))


@pytest.mark.parametrize(
    ("deadline_s", "leave"),
    [(None, _cancel), (0.5, _miss_the_deadline)],
    ids=["cancelled", "deadline"],
)
async def test_a_claim_whose_caller_left_hands_its_jobs_back(
    held_store: HeldClaimStore,
    deadline_s: float | None,
    leave: Callable[[ClaimCall], Awaitable[None]],
) -> None:
    store = held_store
    server = await start_api(store)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
    workers = worker_pb2_grpc.WorkerServiceStub(channel)
    try:
        enqueued = await jobs.EnqueueJobs(
            pb.EnqueueJobsRequest(jobs=[pb.EnqueueJobRequest(type="t", payload=b"p")] * 3)
        )
        ids = [job.id for job in enqueued.jobs]
        call = workers.ClaimJobs(wpb.ClaimJobsRequest(types=["t"], max_jobs=3), timeout=deadline_s)
        async with asyncio.timeout(10):
            await store.claimed.wait()
        await leave(call)
        # A call after the caller left, on the same connection, so the server
        # has seen the cancel before the held claim returns its leases.
        await jobs.GetJob(pb.GetJobRequest(id=ids[0]))
        await asyncio.sleep(0.2)
        store.release.set()
        states: list[tuple[int, int]] = []
        for _ in range(100):
            states = [
                ((job := (await jobs.GetJob(pb.GetJobRequest(id=i))).job).status, job.attempts)
                for i in ids
            ]
            if all(status != pb.JOB_STATUS_RUNNING for status, _ in states):
                break
            await asyncio.sleep(0.05)
        assert states == [(pb.JOB_STATUS_PENDING, 0)] * 3
    finally:
        store.release.set()
        await channel.close(None)
        await server.stop(None)
        await store.close()


async def _claim_and_cancel(api: Stubs, job_type: str) -> str:
    await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type=job_type, payload=b"p"))
    claimed = await api.workers.ClaimJobs(wpb.ClaimJobsRequest(types=[job_type]))
    (lease,) = claimed.leases
    await api.jobs.CancelJob(pb.CancelJobRequest(id=lease.job.id))
    return lease.job.id


async def _until_live(api: Stubs, received: asyncio.Queue[str]) -> None:
    """Cancel probe jobs until one is heard: from then on the stream sees every cancel."""
    for _ in range(50):
        probe = await _claim_and_cancel(api, "probe")
        try:
            async with asyncio.timeout(0.2):
                while await received.get() != probe:
                    pass
            return
        except TimeoutError:
            continue
    raise AssertionError("the cancellation stream never delivered a probe")


async def _collect(ids: AsyncIterator[str], into: asyncio.Queue[str]) -> None:
    async for job_id in ids:
        into.put_nowait(job_id)


async def _notices(
    call: grpc.aio.UnaryStreamCall[wpb.WatchCancellationsRequest, wpb.WatchCancellationsResponse],
) -> AsyncIterator[str]:
    async for notice in call:
        yield notice.job_id


async def _cancel_latencies(api: Stubs, received: asyncio.Queue[str], count: int) -> list[float]:
    """Seconds from sending each CancelJob to its id arriving on the stream.

    Counted from the send, not the answer: the notice may well overtake the
    CancelJob response.
    """
    latencies: list[float] = []
    for _ in range(count):
        await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="t", payload=b"p"))
        (lease,) = (await api.workers.ClaimJobs(wpb.ClaimJobsRequest(types=["t"]))).leases
        sent = time.monotonic()
        await api.jobs.CancelJob(pb.CancelJobRequest(id=lease.job.id))
        async with asyncio.timeout(CANCEL_BOUND_S):
            while await received.get() != lease.job.id:
                pass
        latencies.append(time.monotonic() - sent)
    return latencies


async def test_watch_cancellations_delivers_a_cancel_within_a_second(api: Api) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()
    call = api.workers.WatchCancellations(wpb.WatchCancellationsRequest())
    reader = asyncio.create_task(_collect(_notices(call), received))
    try:
        await _until_live(api, received)
        latencies = await _cancel_latencies(api, received, 1)
        assert latencies[0] < CANCEL_BOUND_S
    finally:
        call.cancel()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_a_pending_or_finished_job_is_not_announced(api: Api) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()
    call = api.workers.WatchCancellations(wpb.WatchCancellationsRequest())
    reader = asyncio.create_task(_collect(_notices(call), received))
    try:
        await _until_live(api, received)
        pending = await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="idle", payload=b"p"))
        await api.jobs.CancelJob(pb.CancelJobRequest(id=pending.job.id))
        # A running job cancelled after it: its id comes, the pending one's never did.
        running = await _claim_and_cancel(api, "t")
        async with asyncio.timeout(5):
            assert await received.get() == running
    finally:
        call.cancel()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _start_at(
    store: MemoryJobStore, address: str, servicer: WorkerServicer | None = None
) -> RunningServer:
    """Like ``start_api``, on a given address: a restarted server keeps its port."""
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator(), limits=TEST_LIMITS)
    return await start_server(
        address=address,
        job_servicer=JobServicer(service, options=TEST_OPTIONS),
        worker_servicer=servicer or WorkerServicer(store, limits=TEST_LIMITS, options=TEST_OPTIONS),
        health=StoreHealth(store, services=[JOB_SERVICE_NAME, WORKER_SERVICE_NAME]),
        options=TEST_OPTIONS,
    )


async def test_grpc_source_follows_cancellations_across_a_server_restart() -> None:
    store = MemoryJobStore(MemoryStoreSettings(max_jobs=1_000))
    server = await _start_at(store, "127.0.0.1:0")
    port = server.port
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    api = Api(
        store=FaultyStore(store),
        server=server,
        channel=channel,
        jobs=jobqueue_pb2_grpc.JobServiceStub(channel),
        workers=worker_pb2_grpc.WorkerServiceStub(channel),
    )
    source = GrpcSource(f"127.0.0.1:{port}", timeout_s=5)
    received: asyncio.Queue[str] = asyncio.Queue()
    reader = asyncio.create_task(_collect(source.cancellations(), received))
    try:
        await _until_live(api, received)
        await _cancel_latencies(api, received, 1)
        await server.stop(None)
        server = await _start_at(store, f"127.0.0.1:{port}")
        api.server = server
        await _until_live(api, received)
        await _cancel_latencies(api, received, 1)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await source.close()
        await channel.close(None)
        await server.stop(None)
        await store.close()


async def test_cancel_to_worker_latency_through_the_server(api: Api) -> None:
    """The figure the issue asks for: CancelJob → the id at a GrpcSource, 50 times."""
    source = GrpcSource(f"127.0.0.1:{api.server.port}", timeout_s=5)
    received: asyncio.Queue[str] = asyncio.Queue()
    reader = asyncio.create_task(_collect(source.cancellations(), received))
    try:
        await _until_live(api, received)
        latencies = sorted(await _cancel_latencies(api, received, 50))
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await source.close()
    p50 = statistics.median(latencies)
    p99 = latencies[math.ceil(len(latencies) * 0.99) - 1]
    print(f"cancel → GrpcSource.cancellations: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    assert p99 < CANCEL_BOUND_S


@pytest.mark.parametrize("own_channel", [True, False], ids=["own channel", "given channel"])
async def test_closing_a_grpc_source_ends_its_cancellations(api: Api, own_channel: bool) -> None:
    target = f"127.0.0.1:{api.server.port}"
    source = GrpcSource(target, timeout_s=5, channel=None if own_channel else api.channel)
    received: asyncio.Queue[str] = asyncio.Queue()
    reader = asyncio.create_task(_collect(source.cancellations(), received))
    await _until_live(api, received)
    await source.close()
    async with asyncio.timeout(5):
        await reader  # ends by itself, without an error


async def test_stop_streams_ends_every_cancellation_stream_at_once() -> None:
    store = MemoryJobStore(MemoryStoreSettings(max_jobs=1_000))
    servicer = WorkerServicer(store, limits=TEST_LIMITS, options=TEST_OPTIONS)
    server = await _start_at(store, "127.0.0.1:0", servicer)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    api = Api(
        store=FaultyStore(store),
        server=server,
        channel=channel,
        jobs=jobqueue_pb2_grpc.JobServiceStub(channel),
        workers=worker_pb2_grpc.WorkerServiceStub(channel),
    )
    try:
        received: asyncio.Queue[str] = asyncio.Queue()
        call = api.workers.WatchCancellations(wpb.WatchCancellationsRequest())
        reader = asyncio.create_task(_collect(_notices(call), received))
        await _until_live(api, received)
        await servicer.stop_streams()
        async with asyncio.timeout(5):
            await reader
        assert await call.code() == grpc.StatusCode.OK
    finally:
        await channel.close(None)
        await server.stop(None)
        await store.close()
