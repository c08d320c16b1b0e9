"""SettleJobs judges each outcome alone, with the direct path's limits (issue 11, item 5).

A result over the limit fails that job alone, whether the server receives it
and judges it or it is too big to be received at all (then GrpcSource fails
it itself, in the same words); retry delays are durations on the server's
clock, and an old worker's absolute ``retry_at_ms`` still works.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from jobqueue.domain import JobStore, LeaseService, Limits, ManualClock, Outcome, OutcomeKind
from jobqueue.grpc import MIB, RunningServer, ServerOptions
from jobqueue.grpc._mapping import outcome_from_proto
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import GrpcSource, JobContext, Worker, WorkerSettings
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2_grpc
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests.grpc.conftest import TEST_LIMITS, TEST_OPTIONS, start_api

TWO_MB = 2 * 1024 * 1024
LIMIT = Limits().max_result_bytes
TOO_LARGE = f"result too large: {TWO_MB} bytes > limit of {LIMIT}"


@dataclass
class Server:
    server: RunningServer
    jobs: jobqueue_pb2_grpc.JobServiceAsyncStub
    workers: worker_pb2_grpc.WorkerServiceAsyncStub

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    async def enqueue(self, count: int, job_type: str = "t") -> list[str]:
        requests = [pb.EnqueueJobRequest(type=job_type, payload=b"p") for _ in range(count)]
        response = await self.jobs.EnqueueJobs(pb.EnqueueJobsRequest(jobs=requests))
        return [job.id for job in response.jobs]

    async def job(self, job_id: str) -> pb.Job:
        return (await self.jobs.GetJob(pb.GetJobRequest(id=job_id))).job


async def _serve(max_message_bytes: int, store: JobStore) -> AsyncIterator[Server]:
    options = ServerOptions(
        max_message_bytes=max_message_bytes, max_claim_wait_ms=TEST_OPTIONS.max_claim_wait_ms
    )
    server = await start_api(store, limits=TEST_LIMITS, options=options)
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{server.port}",
        options=[("grpc.max_send_message_length", 64 * MIB)],
    )
    try:
        yield Server(
            server,
            jobqueue_pb2_grpc.JobServiceStub(channel),
            worker_pb2_grpc.WorkerServiceStub(channel),
        )
    finally:
        await channel.close(None)
        await server.stop(None)
        await store.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "redis":
        settings = RedisStoreSettings(
            url=request.getfixturevalue("redis_url"),
            key_prefix=request.getfixturevalue("key_prefix").rstrip(":"),
        )
        return RedisJobStore(settings)
    return MemoryJobStore(MemoryStoreSettings(max_jobs=1_000))


@pytest.fixture
async def roomy(store: JobStore) -> AsyncIterator[Server]:
    """A server whose messages may hold 8 MiB: a 2 MB result arrives and is judged."""
    async for server in _serve(8 * MIB, store):
        yield server


@pytest.fixture
async def tight(store: JobStore) -> AsyncIterator[Server]:
    """A server at the smallest message limit (1 MiB): a 2 MB result cannot even arrive."""
    async for server in _serve(MIB, store):
        yield server


async def test_a_result_over_the_limit_fails_its_job_alone(roomy: Server) -> None:
    ids = await roomy.enqueue(21)
    claimed = await roomy.workers.ClaimJobs(wpb.ClaimJobsRequest(types=["t"], max_jobs=21))
    leases = list(claimed.leases)
    assert len(leases) == 21
    outcomes = [
        wpb.Outcome(
            job_id=lease.job.id,
            token=lease.token,
            kind=wpb.OUTCOME_KIND_COMPLETE,
            result=b"x" * TWO_MB if index == 7 else b"ok",
        )
        for index, lease in enumerate(leases)
    ]
    settled = await roomy.workers.SettleJobs(wpb.SettleJobsRequest(outcomes=outcomes))
    assert list(settled.accepted) == [True] * 21
    big = leases[7].job.id
    for job_id in ids:
        job = await roomy.job(job_id)
        if job_id == big:
            assert (job.status, job.attempts, job.last_error) == (
                pb.JOB_STATUS_FAILED,
                1,
                TOO_LARGE,
            )
            assert not job.HasField("result")
        else:
            assert (job.status, job.attempts, job.result) == (pb.JOB_STATUS_COMPLETED, 1, b"ok")


async def test_grpc_source_settles_a_batch_with_one_result_the_server_cannot_receive(
    tight: Server,
) -> None:
    ids = await tight.enqueue(21)
    source = GrpcSource(tight.target, timeout_s=5)
    try:
        leases = await source.claim(["t"], limit=21, lease_ms=30_000, wait_ms=0)
        assert len(leases) == 21
        big = leases[3].job.id
        outcomes = [
            Outcome(
                job_id=lease.job.id,
                token=lease.token,
                kind=OutcomeKind.COMPLETE,
                result=b"x" * TWO_MB if lease.job.id == big else b"ok",
            )
            for lease in leases
        ]
        # Returns at once with every outcome applied: nothing for the worker to retry.
        assert await source.settle(outcomes) == [True] * 21
    finally:
        await source.close()
    for job_id in ids:
        job = await tight.job(job_id)
        if job_id == big:
            assert (job.status, job.attempts) == (pb.JOB_STATUS_FAILED, 1)
            assert job.last_error.startswith(f"result too large: {TWO_MB} bytes > limit of ")
        else:
            assert (job.status, job.attempts, job.result) == (pb.JOB_STATUS_COMPLETED, 1, b"ok")


async def test_grpc_source_splits_big_batches_that_fit_one_by_one(tight: Server) -> None:
    # Four results of 600 KB: each fits the server's 1 MiB messages and its
    # result limit, all four together do not fit one message.
    ids = await tight.enqueue(4)
    source = GrpcSource(tight.target, timeout_s=5)
    try:
        leases = await source.claim(["t"], limit=4, lease_ms=30_000, wait_ms=0)
        outcomes = [
            Outcome(
                job_id=lease.job.id,
                token=lease.token,
                kind=OutcomeKind.COMPLETE,
                result=b"y" * 600_000,
            )
            for lease in leases
        ]
        assert await source.settle(outcomes) == [True] * 4
    finally:
        await source.close()
    for job_id in ids:
        job = await tight.job(job_id)
        assert (job.status, len(job.result)) == (pb.JOB_STATUS_COMPLETED, 600_000)


async def _retry(
    server: Server, *, retry_delay_ms: int | None = None, retry_at_ms: int | None = None
) -> pb.Job:
    (job_id,) = await server.enqueue(1)
    claimed = await server.workers.ClaimJobs(wpb.ClaimJobsRequest(types=["t"]))
    (lease,) = claimed.leases
    outcome = wpb.Outcome(
        job_id=job_id,
        token=lease.token,
        kind=wpb.OUTCOME_KIND_RETRY,
        error="boom",
        retry_delay_ms=retry_delay_ms,
        retry_at_ms=retry_at_ms,
    )
    settled = await server.workers.SettleJobs(wpb.SettleJobsRequest(outcomes=[outcome]))
    assert list(settled.accepted) == [True]
    return await server.job(job_id)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_a_retry_delay_is_counted_from_the_servers_clock(roomy: Server) -> None:
    before = _now_ms()
    job = await _retry(roomy, retry_delay_ms=60_000)
    assert before + 60_000 <= job.execution_time_ms <= _now_ms() + 60_000
    assert (job.status, job.attempts, job.last_error) == (pb.JOB_STATUS_PENDING, 1, "boom")


async def test_an_old_workers_retry_time_still_works(roomy: Server) -> None:
    before = _now_ms()
    job = await _retry(roomy, retry_at_ms=before + 60_000)
    assert before + 60_000 - 1_000 <= job.execution_time_ms <= before + 60_000 + 1_000
    assert (job.status, job.attempts) == (pb.JOB_STATUS_PENDING, 1)
    # A time already past (a worker whose clock is behind) means now.
    job = await _retry(roomy, retry_at_ms=1)
    assert job.execution_time_ms <= _now_ms()
    claimed = await roomy.workers.ClaimJobs(wpb.ClaimJobsRequest(types=["t"]))
    assert [lease.job.id for lease in claimed.leases] == [job.id]
    assert claimed.leases[0].job.attempts == 2


async def test_grpc_source_sends_the_retry_delay(roomy: Server) -> None:
    await roomy.enqueue(1)
    source = GrpcSource(roomy.target, timeout_s=5)
    try:
        (lease,) = await source.claim(["t"], limit=1, lease_ms=30_000, wait_ms=0)
        before = _now_ms()
        retry = Outcome(
            job_id=lease.job.id,
            token=lease.token,
            kind=OutcomeKind.RETRY,
            error="boom",
            retry_delay_ms=45_000,
        )
        assert await source.settle([retry]) == [True]
    finally:
        await source.close()
    job = await roomy.job(lease.job.id)
    assert before + 45_000 <= job.execution_time_ms <= _now_ms() + 45_000


def test_the_mapping_turns_an_old_retry_time_into_a_delay() -> None:
    job_id = "0190a8f5-0000-7000-8000-000000000000"
    clock = ManualClock(10_000)
    leases = LeaseService(MemoryJobStore(clock=clock), clock=clock)

    def delay(*, retry_delay_ms: int | None = None, retry_at_ms: int | None = None) -> int | None:
        message = wpb.Outcome(
            job_id=job_id,
            token="t",
            kind=wpb.OUTCOME_KIND_RETRY,
            retry_delay_ms=retry_delay_ms,
            retry_at_ms=retry_at_ms,
        )
        return outcome_from_proto(message, index=0, delay_until=leases.delay_until).retry_delay_ms

    assert delay() is None
    assert delay(retry_at_ms=12_500) == 2_500
    assert delay(retry_at_ms=1) == 0
    assert delay(retry_delay_ms=700) == 700
    assert delay(retry_delay_ms=700, retry_at_ms=99_000) == 700


async def test_a_worker_with_a_bigger_limit_than_the_server_gets_its_job_failed_alone(
    roomy: Server,
) -> None:
    """The issue's case end to end: 21 jobs, one handler returns 2 MB, through the server.

    The worker here allows bigger results than the server (a deployment whose
    limits disagree), so the 2 MB result reaches the server and is judged
    there: that job alone FAILED, the 20 others COMPLETED on their first
    attempt, and nothing is settled twice.
    """
    ids = await roomy.enqueue(20, job_type="small")
    (big,) = await roomy.enqueue(1, job_type="big")
    worker = Worker(
        GrpcSource(roomy.target, timeout_s=5),
        settings=WorkerSettings(max_result_bytes=4 * MIB, concurrency=50),
    )

    @worker.handler("small")
    async def small(job: JobContext) -> bytes:
        return b"ok"

    @worker.handler("big")
    async def huge(job: JobContext) -> bytes:
        return b"x" * TWO_MB

    await worker.start()
    try:
        for _ in range(200):
            jobs = [await roomy.job(job_id) for job_id in [*ids, big]]
            if all(job.status in (pb.JOB_STATUS_COMPLETED, pb.JOB_STATUS_FAILED) for job in jobs):
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop(grace_s=2)
    failed = await roomy.job(big)
    assert (failed.status, failed.attempts, failed.last_error) == (
        pb.JOB_STATUS_FAILED,
        1,
        TOO_LARGE,
    )
    for job_id in ids:
        job = await roomy.job(job_id)
        assert (job.status, job.attempts, job.result) == (pb.JOB_STATUS_COMPLETED, 1, b"ok")
