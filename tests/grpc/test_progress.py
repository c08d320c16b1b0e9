"""WorkerService.ReportProgress on a real channel: applied per lease, refused whole when bad."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2_grpc
from mpataki.jobqueue.v1 import worker_pb2 as worker_pb
from tests.grpc.conftest import start_api
from tests.grpc.test_status_codes import expect_status


@pytest.fixture
async def stubs() -> AsyncIterator[
    tuple[jobqueue_pb2_grpc.JobServiceAsyncStub, worker_pb2_grpc.WorkerServiceAsyncStub]
]:
    store = MemoryJobStore()
    server = await start_api(store)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield jobqueue_pb2_grpc.JobServiceStub(channel), worker_pb2_grpc.WorkerServiceStub(channel)
    finally:
        await channel.close(None)
        await server.stop(None)
        await store.close()


def report(job_id: str, token: str, fraction: float, message: str = "") -> worker_pb.ProgressReport:
    lease = worker_pb.LeaseRef(job_id=job_id, token=token)
    return worker_pb.ProgressReport(lease=lease, fraction=fraction, message=message)


async def test_progress_is_stored_and_shown_on_the_job(
    stubs: tuple[jobqueue_pb2_grpc.JobServiceAsyncStub, worker_pb2_grpc.WorkerServiceAsyncStub],
) -> None:
    jobs, workers = stubs
    await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t", unique_key="one"))
    claimed = await workers.ClaimJobs(worker_pb.ClaimJobsRequest(types=["t"], lease_ms=30_000))
    (lease,) = claimed.leases
    answer = await workers.ReportProgress(
        worker_pb.ReportProgressRequest(
            reports=[
                report(lease.job.id, lease.token, 0.4, "resizing"),
                report(lease.job.id, "stale", 0.9),
            ]
        )
    )
    assert list(answer.applied) == [True, False]
    job = (await jobs.GetJob(pb.GetJobRequest(id=lease.job.id))).job
    assert (job.progress, job.progress_message) == (0.4, "resizing")
    assert (job.unique_key, job.unique_scope) == ("one", pb.UNIQUE_SCOPE_PENDING_OR_RUNNING)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (report("not-an-id", "t", 0.5), "reports[0].job_id"),
        (report(str(uuid.uuid4()), "", 0.5), "reports[0].token"),
        (report(str(uuid.uuid4()), "t", -0.1), "reports[0].fraction"),
        (report(str(uuid.uuid4()), "t", 0.5, "m" * 257), "reports[0].message"),
    ],
)
async def test_a_bad_report_is_invalid_argument(
    stubs: tuple[jobqueue_pb2_grpc.JobServiceAsyncStub, worker_pb2_grpc.WorkerServiceAsyncStub],
    bad: worker_pb.ProgressReport,
    field: str,
) -> None:
    _, workers = stubs
    request = worker_pb.ReportProgressRequest(reports=[bad])
    await expect_status(
        workers.ReportProgress(request), grpc.StatusCode.INVALID_ARGUMENT, contains=field
    )


async def test_a_held_unique_key_is_already_exists(
    stubs: tuple[jobqueue_pb2_grpc.JobServiceAsyncStub, worker_pb2_grpc.WorkerServiceAsyncStub],
) -> None:
    jobs, _ = stubs
    first = await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t", unique_key="k"))
    reject = pb.EnqueueJobRequest(
        type="t", unique_key="k", on_conflict=pb.UNIQUE_CONFLICT_POLICY_REJECT
    )
    await expect_status(
        jobs.EnqueueJob(reject), grpc.StatusCode.ALREADY_EXISTS, contains=first.job.id
    )
    unknown = pb.EnqueueJobRequest(type="t", unique_key="k", unique_scope=9)  # type: ignore[arg-type]
    await expect_status(
        jobs.EnqueueJob(unknown),
        grpc.StatusCode.INVALID_ARGUMENT,
        contains="unique_scope: 9 is not a known UniqueScope",
    )
    # The message names the proto's enum, the only one an API caller sees.
    policy = pb.EnqueueJobRequest(type="t", unique_key="k", on_conflict=5)  # type: ignore[arg-type]
    await expect_status(
        jobs.EnqueueJob(policy),
        grpc.StatusCode.INVALID_ARGUMENT,
        contains="on_conflict: 5 is not a known UniqueConflictPolicy",
    )
