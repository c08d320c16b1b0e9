"""WorkerService over a real channel: claim, renew, settle, and the checks on remote workers."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest

from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from tests.grpc.conftest import Api
from tests.grpc.test_status_codes import expect_status


async def claim_one(api: Api, job_type: str = "t", **options: int) -> wpb.Lease:
    await api.jobs.EnqueueJob(pb.EnqueueJobRequest(type=job_type, payload=b"p"))
    response = await api.workers.ClaimJobs(wpb.ClaimJobsRequest(types=[job_type], **options))
    (lease,) = response.leases
    return lease


async def test_claim_leases_a_due_job(api: Api) -> None:
    before = time.time_ns() // 1_000_000
    lease = await claim_one(api, lease_ms=5_000)
    assert lease.job.status == pb.JOB_STATUS_RUNNING
    assert lease.job.attempts == 1
    assert lease.token
    assert before + 5_000 <= lease.deadline_ms <= time.time_ns() // 1_000_000 + 5_000


async def test_claim_with_nothing_due_waits_then_answers_empty(api: Api) -> None:
    started = time.monotonic()
    response = await api.workers.ClaimJobs(wpb.ClaimJobsRequest(types=["none"], wait_ms=200))
    assert list(response.leases) == []
    assert time.monotonic() - started >= 0.18


async def test_claim_stops_waiting_before_the_callers_deadline(api: Api) -> None:
    response = await api.workers.ClaimJobs(
        wpb.ClaimJobsRequest(types=["none"], wait_ms=2_000), timeout=0.6
    )
    assert list(response.leases) == []


async def test_complete_stores_the_result(api: Api) -> None:
    lease = await claim_one(api)
    settled = await api.workers.SettleJobs(
        wpb.SettleJobsRequest(
            outcomes=[
                wpb.Outcome(
                    job_id=lease.job.id,
                    token=lease.token,
                    kind=wpb.OUTCOME_KIND_COMPLETE,
                    result=b"42",
                )
            ]
        )
    )
    assert list(settled.accepted) == [True]
    job = (await api.jobs.GetJob(pb.GetJobRequest(id=lease.job.id))).job
    assert job.status == pb.JOB_STATUS_COMPLETED
    assert job.result == b"42"


async def test_a_stale_token_is_refused_and_changes_nothing(api: Api) -> None:
    lease = await claim_one(api)
    settled = await api.workers.SettleJobs(
        wpb.SettleJobsRequest(
            outcomes=[wpb.Outcome(job_id=lease.job.id, token="stale", kind=wpb.OUTCOME_KIND_FAIL)]
        )
    )
    assert list(settled.accepted) == [False]
    job = (await api.jobs.GetJob(pb.GetJobRequest(id=lease.job.id))).job
    assert job.status == pb.JOB_STATUS_RUNNING


async def test_retry_records_the_error_and_requeues(api: Api) -> None:
    lease = await claim_one(api)
    await api.workers.SettleJobs(
        wpb.SettleJobsRequest(
            outcomes=[
                wpb.Outcome(
                    job_id=lease.job.id,
                    token=lease.token,
                    kind=wpb.OUTCOME_KIND_RETRY,
                    error="boom",
                    retry_delay_ms=0,
                )
            ]
        )
    )
    job = (await api.jobs.GetJob(pb.GetJobRequest(id=lease.job.id))).job
    assert job.status == pb.JOB_STATUS_PENDING
    assert job.last_error == "boom"
    assert job.attempts == 1


async def test_renew_reports_active_cancel_requested_and_lost(api: Api) -> None:
    lease = await claim_one(api)
    ref = wpb.LeaseRef(job_id=lease.job.id, token=lease.token)
    stale = wpb.LeaseRef(job_id=lease.job.id, token="stale")
    renewed = await api.workers.RenewLeases(wpb.RenewLeasesRequest(leases=[ref, stale]))
    assert list(renewed.states) == [wpb.LEASE_STATE_ACTIVE, wpb.LEASE_STATE_LOST]
    await api.jobs.CancelJob(pb.CancelJobRequest(id=lease.job.id))
    renewed = await api.workers.RenewLeases(wpb.RenewLeasesRequest(leases=[ref]))
    assert list(renewed.states) == [wpb.LEASE_STATE_CANCEL_REQUESTED]
    await api.workers.SettleJobs(
        wpb.SettleJobsRequest(
            outcomes=[
                wpb.Outcome(job_id=lease.job.id, token=lease.token, kind=wpb.OUTCOME_KIND_CANCELLED)
            ]
        )
    )
    job = (await api.jobs.GetJob(pb.GetJobRequest(id=lease.job.id))).job
    assert job.status == pb.JOB_STATUS_CANCELLED


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (wpb.ClaimJobsRequest(), "types"),
        (wpb.ClaimJobsRequest(types=["bad type"]), "types[0]"),
        (wpb.ClaimJobsRequest(types=["t"], max_jobs=-1), "max_jobs"),
        (wpb.ClaimJobsRequest(types=["t"], lease_ms=5), "lease_ms"),
        (wpb.ClaimJobsRequest(types=["t"], lease_ms=10**10), "lease_ms"),
        (wpb.ClaimJobsRequest(types=["t"], wait_ms=-1), "wait_ms"),
    ],
)
async def test_a_bad_claim_is_invalid_argument(
    api: Api, request_: wpb.ClaimJobsRequest, field: str
) -> None:
    await expect_status(
        api.workers.ClaimJobs(request_), grpc.StatusCode.INVALID_ARGUMENT, contains=field
    )


@pytest.mark.parametrize(
    "outcome",
    [
        wpb.Outcome(job_id="x", token="t", kind=wpb.OUTCOME_KIND_FAIL),
        wpb.Outcome(job_id=str(uuid.uuid4()), kind=wpb.OUTCOME_KIND_FAIL),
        wpb.Outcome(job_id=str(uuid.uuid4()), token="t"),
        wpb.Outcome(job_id=str(uuid.uuid4()), token="t", kind=wpb.OutcomeKind.ValueType(42)),
    ],
    ids=["bad job_id", "empty token", "unspecified kind", "unknown kind"],
)
async def test_a_malformed_outcome_is_refused_alone_and_the_rest_settle(
    api: Api, outcome: wpb.Outcome
) -> None:
    first, second = await claim_one(api), await claim_one(api)
    good = [
        wpb.Outcome(job_id=lease.job.id, token=lease.token, kind=wpb.OUTCOME_KIND_COMPLETE)
        for lease in (first, second)
    ]
    settled = await api.workers.SettleJobs(
        wpb.SettleJobsRequest(outcomes=[good[0], outcome, good[1]])
    )
    assert list(settled.accepted) == [True, False, True]
    for lease in (first, second):
        job = (await api.jobs.GetJob(pb.GetJobRequest(id=lease.job.id))).job
        assert (job.status, job.attempts) == (pb.JOB_STATUS_COMPLETED, 1)


async def test_too_many_outcomes_is_invalid_argument(api: Api) -> None:
    outcome = wpb.Outcome(job_id=str(uuid.uuid4()), token="t", kind=wpb.OUTCOME_KIND_FAIL)
    await expect_status(
        api.workers.SettleJobs(wpb.SettleJobsRequest(outcomes=[outcome] * 51)),
        grpc.StatusCode.INVALID_ARGUMENT,
        contains="outcomes",
    )


async def test_a_bad_renewal_is_invalid_argument(api: Api) -> None:
    await expect_status(
        api.workers.RenewLeases(
            wpb.RenewLeasesRequest(leases=[wpb.LeaseRef(job_id="nope", token="t")])
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        contains="leases[0].job_id",
    )
