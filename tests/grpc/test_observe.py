"""ObservingInterceptor: every finished call reaches the observer with its code and duration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jobqueue.connect import ObservingInterceptor as ConnectObservingInterceptor
from jobqueue.grpc import BearerTokenAuth, ObservingInterceptor, RpcObserver
from jobqueue.grpc._observe import observation_reporter
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2, worker_pb2_grpc
from tests.grpc.conftest import start_api

TOKEN = "observe-token-0123456789"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
ENQUEUE = "/mpataki.jobqueue.v1.JobService/EnqueueJob"


@dataclass
class Recorder:
    calls: list[tuple[str, grpc.StatusCode, float]] = field(default_factory=list)

    def observe(self, *, method: str, code: grpc.StatusCode, duration_s: float) -> None:
        self.calls.append((method, code, duration_s))

    def codes(self, method: str) -> list[grpc.StatusCode]:
        return [code for name, code, _ in self.calls if name == method]

    async def settle(self, count: int) -> None:
        """Observations land as the server finishes a call, just after the client sees it."""
        for _ in range(100):
            if len(self.calls) >= count:
                return
            await asyncio.sleep(0.01)


def test_the_recorder_is_an_observer() -> None:
    observer: RpcObserver = Recorder()
    assert observer


@pytest.fixture
async def observed() -> AsyncIterator[tuple[Recorder, grpc.aio.Channel]]:
    recorder = Recorder()
    store = MemoryJobStore()
    server = await start_api(
        store, interceptors=[ObservingInterceptor(recorder), BearerTokenAuth([TOKEN])]
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield recorder, channel
    finally:
        await channel.close(None)
        await server.stop(None)
        await store.close()


async def test_codes_and_durations_of_unary_calls(
    observed: tuple[Recorder, grpc.aio.Channel],
) -> None:
    recorder, channel = observed
    jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
    await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"), metadata=AUTH)
    for request, metadata in [
        (pb.EnqueueJobRequest(type="bad type"), AUTH),  # INVALID_ARGUMENT
        (pb.EnqueueJobRequest(type="t"), None),  # UNAUTHENTICATED
    ]:
        with pytest.raises(grpc.aio.AioRpcError):
            await jobs.EnqueueJob(request, metadata=metadata)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await jobs.GetJob(pb.GetJobRequest(id="missing"), metadata=AUTH)
    await recorder.settle(4)
    assert recorder.codes(ENQUEUE) == [
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
    ]
    # Whatever the servicer answered, the observer saw the same.
    assert recorder.codes("/mpataki.jobqueue.v1.JobService/GetJob") == [caught.value.code()]
    assert all(seconds >= 0 for _, _, seconds in recorder.calls)


async def test_a_long_poll_is_timed(observed: tuple[Recorder, grpc.aio.Channel]) -> None:
    recorder, channel = observed
    workers = worker_pb2_grpc.WorkerServiceStub(channel)
    await workers.ClaimJobs(worker_pb2.ClaimJobsRequest(types=["t"], wait_ms=200), metadata=AUTH)
    await recorder.settle(1)
    [(method, code, seconds)] = recorder.calls
    assert (method, code) == ("/mpataki.jobqueue.v1.WorkerService/ClaimJobs", grpc.StatusCode.OK)
    assert seconds >= 0.19


async def test_streams_and_health_are_observed(
    observed: tuple[Recorder, grpc.aio.Channel],
) -> None:
    recorder, channel = observed
    jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
    job = (await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"), metadata=AUTH)).job
    await jobs.CancelJob(pb.CancelJobRequest(id=job.id), metadata=AUTH)
    async for update in jobs.WatchJob(pb.WatchJobRequest(id=job.id), metadata=AUTH):
        assert update
    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    await recorder.settle(4)
    assert recorder.codes("/mpataki.jobqueue.v1.JobService/WatchJob") == [grpc.StatusCode.OK]
    assert recorder.codes("/grpc.health.v1.Health/Check") == [grpc.StatusCode.OK]


async def test_unknown_methods_are_not_observed(
    observed: tuple[Recorder, grpc.aio.Channel],
) -> None:
    recorder, channel = observed
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary("/made.up/Method", None, None)(b"", metadata=AUTH)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    await asyncio.sleep(0.05)
    assert recorder.calls == []


class OldRecorder:
    """An observer written before the unit convention: it takes ``seconds``."""

    def __init__(self) -> None:
        self.durations: list[float] = []

    def observe(self, *, method: str, code: grpc.StatusCode, seconds: float) -> None:
        self.durations.append(seconds)


def test_an_observer_taking_seconds_still_works_and_is_warned() -> None:
    old = OldRecorder()
    with pytest.warns(DeprecationWarning, match="duration_s"):
        report = observation_reporter(old)  # type: ignore[arg-type]
    report(ENQUEUE, grpc.StatusCode.OK, 0.25)
    assert old.durations == [0.25]
    with pytest.warns(DeprecationWarning, match="duration_s"):
        ObservingInterceptor(OldRecorder())  # type: ignore[arg-type]
    with pytest.warns(DeprecationWarning, match="duration_s"):
        ConnectObservingInterceptor(OldRecorder())  # type: ignore[arg-type]
    recorder = Recorder()
    observation_reporter(recorder)(ENQUEUE, grpc.StatusCode.OK, 0.5)
    assert recorder.calls == [(ENQUEUE, grpc.StatusCode.OK, 0.5)]
