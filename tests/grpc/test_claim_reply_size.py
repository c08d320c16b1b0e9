"""A claim's answer fits what its caller can receive (ClaimJobsRequest.max_response_bytes).

The server caps a claim so that its answer fits its own message limit. A
worker whose receive limit is smaller (a server tuned above the client SDK's
64 MiB, or a worker's channel of its own) would get an answer it cannot read:
gRPC refuses it after the jobs were leased, and they wait out their leases.
The worker says how much it can receive, and the server hands out no more jobs
than fit both ends.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from jobqueue.domain import (
    MAX_EPOCH_MS,
    MAX_HEADER_KEY_LENGTH,
    MAX_HEADER_VALUE_BYTES,
    MAX_HEADERS,
    MAX_PROGRESS_MESSAGE_LENGTH,
    MAX_TYPE_LENGTH,
    MAX_UNIQUE_KEY_LENGTH,
    Job,
    JobStatus,
    JobStore,
    Lease,
    Limits,
    OnConflict,
    Outcome,
    OutcomeKind,
    UniqueRule,
    UniqueScope,
    UuidV7Generator,
)
from jobqueue.domain._validation import (
    MAX_ERROR_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_LIMIT_KEY_LENGTH,
)
from jobqueue.grpc import MIB, RunningServer, ServerOptions
from jobqueue.grpc._mapping import add_leases
from jobqueue.grpc._worker_servicer import _WORST_FIELDS_BYTES
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import GrpcSource, SourceUnavailable
from jobqueue.worker._grpc_source import _receive_limit
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2_grpc
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests.grpc.conftest import TEST_LIMITS, TEST_OPTIONS, start_api

PAYLOAD_LIMIT = 256 * 1024
LIMITS = Limits(
    max_payload_bytes=PAYLOAD_LIMIT,
    max_batch_size=TEST_LIMITS.max_batch_size,
    max_page_size=TEST_LIMITS.max_page_size,
)
WORKER_RECEIVES = 2 * MIB
JOBS = 24
PAYLOAD = b"p" * 200_000
"""24 of these (4.8 MB) fit the server's 8 MiB message, not the worker's 2 MiB."""
FITS_THE_WORKER = WORKER_RECEIVES // (PAYLOAD_LIMIT + 16 * 1024)
"""Jobs the server may hand out per answer: the worst case, every payload at the limit."""


@dataclass
class Server:
    server: RunningServer
    jobs: jobqueue_pb2_grpc.JobServiceAsyncStub
    workers: worker_pb2_grpc.WorkerServiceAsyncStub
    target: str
    store: JobStore

    async def job(self, job_id: str) -> pb.Job:
        return (await self.jobs.GetJob(pb.GetJobRequest(id=job_id))).job

    async def enqueue(
        self, count: int, payload: bytes, headers: dict[str, str] | None = None
    ) -> list[str]:
        requests = [
            pb.EnqueueJobRequest(type="t", payload=payload, headers=headers or {})
            for _ in range(count)
        ]
        response = await self.jobs.EnqueueJobs(pb.EnqueueJobsRequest(jobs=requests))
        return [job.id for job in response.jobs]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    """A server whose messages may hold 8 MiB, and a client channel that takes as much."""
    store: JobStore = MemoryJobStore(MemoryStoreSettings(max_jobs=1_000))
    if request.param == "redis":
        store = RedisJobStore(
            RedisStoreSettings(
                url=request.getfixturevalue("redis_url"),
                key_prefix=request.getfixturevalue("key_prefix").rstrip(":"),
            )
        )
    options = ServerOptions(
        max_message_bytes=8 * MIB, max_claim_wait_ms=TEST_OPTIONS.max_claim_wait_ms
    )
    running = await start_api(store, limits=LIMITS, options=options)
    target = f"127.0.0.1:{running.port}"
    channel = grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.max_send_message_length", 8 * MIB),
            ("grpc.max_receive_message_length", 8 * MIB),
        ],
    )
    jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
    try:
        yield Server(running, jobs, worker_pb2_grpc.WorkerServiceStub(channel), target, store)
    finally:
        await channel.close(None)
        await running.stop(None)
        await store.close()


def small_channel(target: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        target, options=[("grpc.max_receive_message_length", WORKER_RECEIVES)]
    )


async def handed_back(server: Server, running: int) -> None:
    """Wait (5 s at most) until only ``running`` jobs run: the server hands the rest
    back after it answers."""
    for _ in range(100):
        if await running_jobs(server) == running:
            return
        await asyncio.sleep(0.05)
    assert await running_jobs(server) == running


async def running_jobs(server: Server) -> int:
    stats = await server.jobs.GetQueueStats(pb.GetQueueStatsRequest())
    return sum(row.running for row in stats.types)


async def test_a_worker_that_says_its_limit_gets_answers_it_can_read(server: Server) -> None:
    await server.enqueue(JOBS, PAYLOAD)
    channel = small_channel(server.target)
    source = GrpcSource(server.target, channel=channel, max_response_bytes=WORKER_RECEIVES)
    try:
        first = await source.claim(["t"], limit=JOBS, lease_ms=30_000, wait_ms=0)
        assert 1 <= len(first) <= FITS_THE_WORKER
        done = [
            Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
            for lease in first
        ]
        held = []
        # The claim that rides with a settle is capped the same way.
        for _ in range(JOBS):  # bounded: each round takes at least one job
            accepted, leases = await source.settle_then_claim(
                done, ["t"], limit=JOBS, lease_ms=30_000
            )
            assert accepted == [True] * len(done)
            assert len(leases) <= FITS_THE_WORKER
            if not leases:
                done = []
                break
            held += leases
            done = [
                Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
                for lease in leases
            ]
        assert not done, "the queue should be empty by now"
    finally:
        await source.close()
        await channel.close(None)
    every = {lease.job.id for lease in first + held}
    assert len(every) == JOBS
    for job_id in every:
        job = await server.job(job_id)
        assert (job.status, job.attempts) == (pb.JOB_STATUS_COMPLETED, 1)


async def test_a_worker_that_does_not_say_strands_the_leases_it_cannot_read(
    server: Server,
) -> None:
    # What the field prevents: the server leases what fits its own 8 MiB,
    # the worker's channel refuses the answer, and the jobs wait out their
    # leases. gRPC says RESOURCE_EXHAUSTED, which the worker reads as a busy
    # server and claims again: each retry would strand more jobs. (0 is what
    # a worker older than the field sends.)
    await server.enqueue(JOBS, PAYLOAD)
    channel = small_channel(server.target)
    source = GrpcSource(server.target, channel=channel, max_response_bytes=0)
    try:
        with pytest.raises(SourceUnavailable, match="larger than max"):
            await source.claim(["t"], limit=JOBS, lease_ms=30_000, wait_ms=0)
    finally:
        await source.close()
        await channel.close(None)
    assert await running_jobs(server) == JOBS


async def test_a_channel_given_without_a_limit_is_read_as_grpcs_default(server: Server) -> None:
    # 24 jobs of 200 KB come to 4.8 MB, over the 4 MiB a bare channel receives.
    await server.enqueue(JOBS, PAYLOAD)
    channel = grpc.aio.insecure_channel(server.target)
    source = GrpcSource(server.target, channel=channel)
    try:
        leases = await source.claim(["t"], limit=JOBS, lease_ms=30_000, wait_ms=0)
    finally:
        await source.close()
        await channel.close(None)
    assert 1 <= len(leases) <= 4 * MIB // (PAYLOAD_LIMIT + 16 * 1024)


async def test_a_negative_limit_is_refused_and_nothing_changes(server: Server) -> None:
    await server.enqueue(2, b"p")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await server.workers.ClaimJobs(
            wpb.ClaimJobsRequest(types=["t"], max_jobs=1, max_response_bytes=-1)
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "max_response_bytes" in (refused.value.details() or "")
    assert await running_jobs(server) == 0

    (lease,) = (await server.workers.ClaimJobs(wpb.ClaimJobsRequest(types=["t"]))).leases
    outcome = wpb.Outcome(job_id=lease.job.id, token=lease.token, kind=wpb.OUTCOME_KIND_COMPLETE)
    claim = wpb.ClaimJobsRequest(types=["t"], max_jobs=1, max_response_bytes=-5)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await server.workers.SettleJobs(wpb.SettleJobsRequest(outcomes=[outcome], claim=claim))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    # The outcome was not applied either: the job still runs under its lease.
    assert (await server.job(lease.job.id)).status == pb.JOB_STATUS_RUNNING
    assert await running_jobs(server) == 1


async def test_leases_past_the_limit_are_handed_back_when_other_fields_are_big(
    server: Server,
) -> None:
    # Payloads at their limit with 32 headers of 1 KiB and an 8 KiB last error:
    # 7 leases (the estimate from the payload limit) come to about 2.15 MB, over
    # the worker's 2 MiB. The server sends what fits and hands back the rest.
    headers = {f"h{index:02d}-{'k' * 120}": "v" * 1_024 for index in range(32)}
    ids = await server.enqueue(14, b"q" * PAYLOAD_LIMIT, headers)
    claimed = await server.workers.ClaimJobs(wpb.ClaimJobsRequest(types=["t"], max_jobs=14))
    assert len(claimed.leases) == 14
    retry = [
        wpb.Outcome(
            job_id=lease.job.id,
            token=lease.token,
            kind=wpb.OUTCOME_KIND_RETRY,
            error="e" * 8_192,
            retry_delay_ms=0,
        )
        for lease in claimed.leases
    ]
    assert list((await server.workers.SettleJobs(wpb.SettleJobsRequest(outcomes=retry))).accepted)
    channel = small_channel(server.target)
    source = GrpcSource(server.target, channel=channel, max_response_bytes=WORKER_RECEIVES)
    try:
        first = await source.claim(["t"], limit=14, lease_ms=30_000, wait_ms=0)
        assert 1 <= len(first) < FITS_THE_WORKER
        # The rest are handed back untried (after the answer): due again, no attempt charged.
        await handed_back(server, len(first))
        done = [
            Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
            for lease in first
        ]
        for _ in range(14):  # bounded: each round takes at least one job
            accepted, leases = await source.settle_then_claim(
                done, ["t"], limit=14, lease_ms=30_000
            )
            assert accepted == [True] * len(done)
            assert 0 < len(leases) < FITS_THE_WORKER or not leases
            done = [
                Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
                for lease in leases
            ]
            if not leases:
                break
    finally:
        await source.close()
        await channel.close(None)
    for job_id in ids:
        job = await server.job(job_id)
        # One retry, one run: the hand-backs gave their attempts back.
        assert (job.status, job.attempts) == (pb.JOB_STATUS_COMPLETED, 2)


def test_the_limit_sent_is_the_channels_own() -> None:
    # The client SDK's channel options say 64 MiB; gRPC's default is 4 MiB; -1 is none.
    assert _receive_limit([("grpc.max_receive_message_length", 64 * MIB)]) == 64 * MIB
    assert _receive_limit([]) == 4 * MIB
    assert _receive_limit([("grpc.max_receive_message_length", -1)]) == 0
    assert (
        _receive_limit(
            [("grpc.max_receive_message_length", MIB), ("grpc.max_receive_message_length", 3)]
        )
        == 3
    )
    with pytest.raises(ValueError, match="max_response_bytes"):
        GrpcSource("127.0.0.1:1", max_response_bytes=-1)


def test_the_largest_leased_job_fits_the_bound_that_skips_measuring() -> None:
    # Every field besides the payload at its limit, text at 4 bytes a character:
    # the answer is measured only when leases at this size could outgrow it.
    wide = "\U0001f600"
    job = Job(
        id=str(uuid.UUID(int=2**128 - 1)),
        type="t" * MAX_TYPE_LENGTH,
        payload=b"",
        status=JobStatus.RUNNING,
        execution_time_ms=MAX_EPOCH_MS,
        created_at=MAX_EPOCH_MS,
        updated_at=MAX_EPOCH_MS,
        attempts=2**31 - 1,
        max_attempts=2**31 - 1,
        last_error=wide * MAX_ERROR_LENGTH,
        cancel_requested=True,
        idempotency_key=wide * MAX_IDEMPOTENCY_KEY_LENGTH,
        priority=-(2**31),
        limit_key=wide * MAX_LIMIT_KEY_LENGTH,
        unique=UniqueRule(
            key=wide * MAX_UNIQUE_KEY_LENGTH,
            scope=UniqueScope.DEBOUNCE,
            on_conflict=OnConflict.REPLACE,
            window_ms=MAX_EPOCH_MS,
        ),
        progress=0.999,
        progress_message=wide * MAX_PROGRESS_MESSAGE_LENGTH,
        headers={
            f"{index:02d}" + "k" * (MAX_HEADER_KEY_LENGTH - 2): "v" * MAX_HEADER_VALUE_BYTES
            for index in range(MAX_HEADERS)
        },
    )
    response = wpb.ClaimJobsResponse()
    add_leases(response.leases, [Lease(job=job, token="x" * 256, deadline_ms=MAX_EPOCH_MS)])
    assert response.ByteSize() <= _WORST_FIELDS_BYTES, response.ByteSize()


async def test_jobs_stored_under_a_larger_payload_limit_are_sized_as_they_are(
    server: Server,
) -> None:
    # Five jobs of 600 KB, stored before the limit came down to 256 KiB (here,
    # straight into the store): an estimate from today's limit (5 x 352 KiB)
    # fits the worker's 2 MiB, the answer (3 MB) does not.
    now = int(time.time() * 1000)
    ids = UuidV7Generator()
    old = [
        Job(
            id=ids.new_id(),
            type="t",
            payload=b"o" * 600_000,
            status=JobStatus.PENDING,
            execution_time_ms=now,
            created_at=now,
            updated_at=now,
        )
        for _ in range(5)
    ]
    await server.store.add(old)
    channel = small_channel(server.target)
    source = GrpcSource(server.target, channel=channel, max_response_bytes=WORKER_RECEIVES)
    try:
        leases = await source.claim(["t"], limit=5, lease_ms=30_000, wait_ms=0)
    finally:
        await source.close()
        await channel.close(None)
    assert 1 <= len(leases) < 5
    await handed_back(server, len(leases))
