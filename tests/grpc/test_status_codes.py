"""Every status code the API promises, through a real channel to an in-process server."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable

import grpc
import pytest

from jobqueue.connect import connect_error
from jobqueue.domain import (
    CapacityExceeded,
    InvalidJob,
    InvalidTransition,
    JobAlreadyFinished,
    JobNotFound,
    JobQueueError,
    LeaseLost,
    StoreUnavailable,
    UniqueConflict,
)
from jobqueue.grpc import INTERNAL_DETAILS, STATUS_CODES, status_for
from jobqueue.grpc._status import UNAVAILABLE_DETAILS
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2 as worker_pb
from tests.grpc.conftest import Api

GET_JOB = "/mpataki.jobqueue.v1.JobService/GetJob"


async def expect_status(
    call: Awaitable[object], code: grpc.StatusCode, *, contains: str = ""
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    assert contains in (caught.value.details() or "")
    return caught.value


async def enqueue(api: Api, job_type: str = "email") -> pb.Job:
    response = await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type=job_type, payload=b"{}"))
    return response.job


async def job_count(api: Api) -> int:
    stats = await api.jobs.GetQueueStats(pb.GetQueueStatsRequest())
    t = stats.total
    return t.pending + t.scheduled + t.running + t.completed + t.failed + t.cancelled


# -- the table -----------------------------------------------------------------


def test_the_table_covers_every_domain_error() -> None:
    # Other packages (the worker SDK) subclass JobQueueError too; the table
    # covers what the domain raises.
    errors = {
        cls
        for cls in JobQueueError.__subclasses__()
        if cls.__module__.startswith("jobqueue.domain")
    }
    assert errors == set(STATUS_CODES)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidJob("type", "bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (JobNotFound("x"), grpc.StatusCode.NOT_FOUND),
        (JobAlreadyFinished("x", "COMPLETED"), grpc.StatusCode.FAILED_PRECONDITION),
        (LeaseLost("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (InvalidTransition("PENDING", "complete"), grpc.StatusCode.FAILED_PRECONDITION),
        (CapacityExceeded("full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (UniqueConflict("k", "holder"), grpc.StatusCode.ALREADY_EXISTS),
        (StoreUnavailable("down"), grpc.StatusCode.UNAVAILABLE),
        (RuntimeError("a bug"), grpc.StatusCode.INTERNAL),
    ],
)
async def test_a_store_error_reaches_the_caller_as_its_status(
    api: Api, error: Exception, code: grpc.StatusCode
) -> None:
    api.store.error = error
    await expect_status(api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="email")), code)
    await expect_status(api.jobs.GetJob(pb.GetJobRequest(id=str(uuid.uuid4()))), code)
    await expect_status(api.workers.ClaimJobs(worker_pb.ClaimJobsRequest(types=["email"])), code)
    watch = api.jobs.WatchJob(pb.WatchJobRequest(id=str(uuid.uuid4())))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in watch:
            pass
    assert caught.value.code() == code


async def test_an_unexpected_error_is_logged_and_its_text_never_leaks(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api.store.error = RuntimeError("secret internals")
    with caplog.at_level(logging.ERROR, logger="jobqueue.grpc"):
        error = await expect_status(
            api.jobs.GetQueueStats(pb.GetQueueStatsRequest()), grpc.StatusCode.INTERNAL
        )
    assert error.details() == INTERNAL_DETAILS
    assert any("secret internals" in str(record.exc_info) for record in caplog.records)


@pytest.mark.parametrize(
    "error",
    [
        StoreUnavailable(
            "Redis is unreachable: Error 2 connecting to unix:/var/run/redis/redis.sock. "
            "No such file or directory."
        ),
        RuntimeError('File "/home/deploy/app/jobqueue/redis/_core.py", line 12, in claim'),
    ],
    ids=["unavailable", "internal"],
)
def test_no_machine_path_reaches_a_caller(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="jobqueue.grpc"):
        code, details = status_for(error)
        connect = connect_error(error)
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)
    for text in (details, connect.message):
        assert "/" not in text
        assert text in (UNAVAILABLE_DETAILS, INTERNAL_DETAILS)
    # The operator still learns what happened.
    assert "/var/run/redis" in caplog.text or "/home/deploy" in str(
        [record.exc_info for record in caplog.records]
    )


async def test_an_unavailable_store_answers_without_its_details(api: Api) -> None:
    api.store.error = StoreUnavailable("Error 111 connecting to 10.0.0.7:6379. Connection refused.")
    error = await expect_status(
        api.jobs.GetJob(pb.GetJobRequest(id=str(uuid.uuid4()))), grpc.StatusCode.UNAVAILABLE
    )
    assert error.details() == UNAVAILABLE_DETAILS


def test_status_for_uses_the_closest_base_class() -> None:
    class SpecialNotFound(JobNotFound):
        pass

    assert status_for(SpecialNotFound("x"))[0] == grpc.StatusCode.NOT_FOUND


# -- INVALID_ARGUMENT: the caller's mistakes, which change nothing --------------


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.EnqueueJobRequest(type=""), "type"),
        (pb.EnqueueJobRequest(type="has space"), "type"),
        (pb.EnqueueJobRequest(type="x" * 129), "type"),
        (pb.EnqueueJobRequest(type="email", payload=b"x" * 1025), "payload"),
        (pb.EnqueueJobRequest(type="email", execution_time_ms=-1), "execution_time_ms"),
        (pb.EnqueueJobRequest(type="email", execution_time_ms=2**62), "execution_time_ms"),
        (pb.EnqueueJobRequest(type="email", max_attempts=0), "max_attempts"),
        (pb.EnqueueJobRequest(type="email", idempotency_key=""), "idempotency_key"),
    ],
)
async def test_an_invalid_job_is_invalid_argument_and_stores_nothing(
    api: Api, request_: pb.EnqueueJobRequest, field: str
) -> None:
    await expect_status(
        api.jobs.EnqueueJob(request_), grpc.StatusCode.INVALID_ARGUMENT, contains=field
    )
    assert await job_count(api) == 0


async def test_one_invalid_job_rejects_the_whole_batch(api: Api) -> None:
    batch = pb.EnqueueJobsRequest(
        jobs=[pb.EnqueueJobRequest(type="ok"), pb.EnqueueJobRequest(type="")]
    )
    await expect_status(
        api.jobs.EnqueueJobs(batch), grpc.StatusCode.INVALID_ARGUMENT, contains="jobs[1].type"
    )
    assert await job_count(api) == 0


async def test_an_empty_or_overlong_batch_key_is_invalid_argument(api: Api) -> None:
    for key in ("", "k" * 10_000):
        batch = pb.EnqueueJobsRequest(jobs=[pb.EnqueueJobRequest(type="ok")], idempotency_key=key)
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        await expect_status(api.jobs.EnqueueJobs(batch), invalid, contains="idempotency_key")
    assert await job_count(api) == 0


async def test_a_batch_over_the_limit_is_invalid_argument(api: Api) -> None:
    batch = pb.EnqueueJobsRequest(jobs=[pb.EnqueueJobRequest(type="ok")] * 51)
    await expect_status(api.jobs.EnqueueJobs(batch), grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize(
    "job_id",
    ["", "nope", "0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a8", "0190c3a27d5e7b1c9a4f3e2d1c0b9a87"],
)
async def test_a_malformed_id_is_invalid_argument(api: Api, job_id: str) -> None:
    await expect_status(
        api.jobs.GetJob(pb.GetJobRequest(id=job_id)), grpc.StatusCode.INVALID_ARGUMENT
    )
    await expect_status(
        api.jobs.CancelJob(pb.CancelJobRequest(id=job_id)), grpc.StatusCode.INVALID_ARGUMENT
    )


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a\x02\xff\xfe",  # field 1 (id), a string, holding invalid UTF-8
        b"\x0a\x10abc",  # a length that runs past the end of the message
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a varint tag that never ends
    ],
)
async def test_a_request_that_does_not_decode_is_invalid_argument(api: Api, body: bytes) -> None:
    raw = api.channel.unary_unary(
        GET_JOB,
        request_serializer=lambda data: data,
        response_deserializer=lambda data: data,
    )
    await expect_status(raw(body), grpc.StatusCode.INVALID_ARGUMENT, contains="not a valid")


async def test_an_undecodable_enqueue_stores_nothing(api: Api) -> None:
    raw = api.channel.unary_unary(
        "/mpataki.jobqueue.v1.JobService/EnqueueJob",
        request_serializer=lambda data: data,
        response_deserializer=lambda data: data,
    )
    await expect_status(raw(b"\x0a\x03\xc3\x28a"), grpc.StatusCode.INVALID_ARGUMENT)
    assert await job_count(api) == 0


async def test_an_unknown_status_filter_is_invalid_argument(api: Api) -> None:
    request = pb.ListJobsRequest(status=pb.JobStatus.ValueType(99))
    await expect_status(
        api.jobs.ListJobs(request), grpc.StatusCode.INVALID_ARGUMENT, contains="status"
    )


@pytest.mark.parametrize("token", ["garbage", "ünïcode", "W10=", "bm90IGpzb24="])
async def test_a_bad_page_token_is_invalid_argument(api: Api, token: str) -> None:
    await expect_status(
        api.jobs.ListJobs(pb.ListJobsRequest(page_token=token)),
        grpc.StatusCode.INVALID_ARGUMENT,
        contains="page_token",
    )


# -- NOT_FOUND, FAILED_PRECONDITION, RESOURCE_EXHAUSTED, UNAVAILABLE ----------------


async def test_an_unknown_id_is_not_found(api: Api) -> None:
    unknown = str(uuid.uuid4())
    await expect_status(api.jobs.GetJob(pb.GetJobRequest(id=unknown)), grpc.StatusCode.NOT_FOUND)
    await expect_status(
        api.jobs.CancelJob(pb.CancelJobRequest(id=unknown)), grpc.StatusCode.NOT_FOUND
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in api.jobs.WatchJob(pb.WatchJobRequest(id=unknown)):
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_cancelling_a_finished_job_is_failed_precondition_and_changes_nothing(
    api: Api,
) -> None:
    job = await enqueue(api)
    await api.jobs.CancelJob(pb.CancelJobRequest(id=job.id))
    await expect_status(
        api.jobs.CancelJob(pb.CancelJobRequest(id=job.id)),
        grpc.StatusCode.FAILED_PRECONDITION,
        contains="CANCELLED",
    )
    after = await api.jobs.GetJob(pb.GetJobRequest(id=job.id))
    assert after.job.status == pb.JOB_STATUS_CANCELLED


async def test_a_full_store_is_resource_exhausted(api: Api) -> None:
    batch = pb.EnqueueJobsRequest(jobs=[pb.EnqueueJobRequest(type="bulk")] * 50)
    for _ in range(20):
        await api.jobs.EnqueueJobs(batch)
    await expect_status(
        api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="one-more")),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )


async def test_an_unreachable_store_is_unavailable_and_the_server_recovers(api: Api) -> None:
    api.store.error = StoreUnavailable("connection refused")
    await expect_status(
        api.jobs.EnqueueJob(pb.EnqueueJobRequest(type="email")), grpc.StatusCode.UNAVAILABLE
    )
    api.store.error = None
    job = await enqueue(api)
    assert job.status == pb.JOB_STATUS_PENDING
