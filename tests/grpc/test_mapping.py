"""Proto ↔ domain mapping: unset stays apart from zero, unknown enums are the caller's mistake."""

from __future__ import annotations

import pytest

import jobqueue.grpc
from jobqueue.domain import (
    InvalidJob,
    Job,
    JobStatus,
    LeaseService,
    LeaseState,
    ManualClock,
    OutcomeKind,
    QueueStats,
    TypeStats,
    UniqueRule,
    UniqueScope,
)
from jobqueue.grpc._mapping import (
    enqueue_request_from_proto,
    job_from_proto,
    job_to_proto,
    lease_state_to_proto,
    outcome_from_proto,
    stats_to_proto,
    status_filter_from_proto,
    status_from_proto,
)
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2 as wpb

JOB_ID = "0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87"


def make_job(**changes: object) -> Job:
    fields: dict[str, object] = {
        "id": JOB_ID,
        "type": "email",
        "payload": b"\x00{}",
        "status": JobStatus.RUNNING,
        "execution_time_ms": 5,
        "created_at": 1,
        "updated_at": 2,
    }
    fields.update(changes)
    return Job(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "job",
    [
        make_job(),
        make_job(
            status=JobStatus.COMPLETED,
            attempts=3,
            max_attempts=5,
            last_error="",
            result=b"",
            cancel_requested=True,
            idempotency_key="k",
        ),
        # Every field set, each to a value no other field of its type holds:
        # the mapping writes them by position, so a swap would show.
        make_job(
            status=JobStatus.FAILED,
            execution_time_ms=7,
            created_at=3,
            updated_at=4,
            attempts=2,
            max_attempts=6,
            last_error="boom",
            result=b"r",
            idempotency_key="ik",
            priority=9,
            limit_key="tenant",
            unique=UniqueRule(key="uk", scope=UniqueScope.PENDING),
            progress=0.5,
            progress_message="half",
            headers={"h": "v"},
        ),
    ],
)
def test_a_job_survives_the_round_trip(job: Job) -> None:
    wire = pb.Job.FromString(job_to_proto(job).SerializeToString())
    assert job_from_proto(wire) == job


def test_unset_optionals_stay_unset_and_empty_ones_stay_empty() -> None:
    bare = job_to_proto(make_job())
    assert not bare.HasField("max_attempts")
    assert not bare.HasField("result")
    empty = job_to_proto(make_job(result=b"", last_error=""))
    assert empty.HasField("result")
    assert empty.HasField("last_error")


def test_domain_statuses_are_the_wire_numbers() -> None:
    for status in JobStatus:
        assert pb.JobStatus.Name(pb.JobStatus.ValueType(int(status))) == f"JOB_STATUS_{status.name}"


def test_unknown_and_unspecified_statuses() -> None:
    assert status_filter_from_proto(pb.JOB_STATUS_UNSPECIFIED) is None
    assert status_filter_from_proto(pb.JOB_STATUS_FAILED) is JobStatus.FAILED
    with pytest.raises(InvalidJob, match="status"):
        status_from_proto(pb.JOB_STATUS_UNSPECIFIED)
    with pytest.raises(InvalidJob, match="99"):
        status_filter_from_proto(99)


def test_an_enqueue_request_keeps_zero_apart_from_unset() -> None:
    unset = enqueue_request_from_proto(pb.EnqueueJobRequest(type="t"))
    assert (unset.execution_time_ms, unset.max_attempts, unset.idempotency_key) == (
        None,
        None,
        None,
    )
    zero = enqueue_request_from_proto(
        pb.EnqueueJobRequest(type="t", execution_time_ms=0, max_attempts=0, idempotency_key="")
    )
    assert (zero.execution_time_ms, zero.max_attempts, zero.idempotency_key) == (0, 0, "")


def test_every_outcome_kind_and_lease_state_maps() -> None:
    kinds = {
        wpb.OUTCOME_KIND_COMPLETE: OutcomeKind.COMPLETE,
        wpb.OUTCOME_KIND_RETRY: OutcomeKind.RETRY,
        wpb.OUTCOME_KIND_FAIL: OutcomeKind.FAIL,
        wpb.OUTCOME_KIND_RELEASE: OutcomeKind.RELEASE,
        wpb.OUTCOME_KIND_CANCELLED: OutcomeKind.CANCELLED,
    }
    for wire, kind in kinds.items():
        message = wpb.Outcome(job_id=JOB_ID, token="t", kind=wire)
        assert outcome_from_proto(message, index=0, delay_until=lambda at: at).kind is kind
    assert {lease_state_to_proto(state) for state in LeaseState} == {
        wpb.LEASE_STATE_ACTIVE,
        wpb.LEASE_STATE_CANCEL_REQUESTED,
        wpb.LEASE_STATE_LOST,
    }


def test_an_outcome_error_is_truncated_by_the_use_case() -> None:
    message = wpb.Outcome(job_id=JOB_ID, token="t", kind=wpb.OUTCOME_KIND_FAIL, error="e" * 100_000)
    outcome = outcome_from_proto(message, index=0, delay_until=lambda at: at)
    judged = LeaseService(MemoryJobStore(clock=ManualClock())).judge(outcome)
    assert judged.error is not None
    assert len(judged.error) == 8_192


def test_an_unknown_outcome_kind_names_its_entry() -> None:
    message = wpb.Outcome(job_id=JOB_ID, token="t", kind=wpb.OutcomeKind.ValueType(42))
    with pytest.raises(InvalidJob) as caught:
        outcome_from_proto(message, index=3, delay_until=lambda at: at)
    assert caught.value.field == "outcomes[3].kind"


def test_stats_carry_totals() -> None:
    stats = QueueStats([TypeStats(type="a", pending=1, failed=2), TypeStats(type="b", pending=3)])
    wire = stats_to_proto(stats)
    assert [row.type for row in wire.types] == ["a", "b"]
    assert (wire.total.pending, wire.total.failed) == (4, 2)


def test_stats_carry_live_workers_and_the_oldest_pending_age() -> None:
    stats = QueueStats(
        [
            TypeStats(type="a", pending=1, oldest_pending_age_ms=900, workers=2),
            TypeStats(type="b", pending=3, oldest_pending_age_ms=4_000),
        ]
    )
    wire = stats_to_proto(stats)
    assert [(row.workers, row.oldest_pending_age_ms) for row in wire.types] == [
        (2, 900),
        (0, 4_000),
    ]
    assert wire.total.oldest_pending_age_ms == 4_000


def test_the_public_surface_is_pinned() -> None:
    assert jobqueue.grpc.__all__ == (
        [
            "JobServicer",
            "WorkerServicer",
            "ScheduleServicer",
            "AdminServicer",
            "start_server",
            "RunningServer",
            "ServerOptions",
            "StoreHealth",
            "JOB_SERVICE_NAME",
            "WORKER_SERVICE_NAME",
            "SCHEDULE_SERVICE_NAME",
            "ADMIN_SERVICE_NAME",
            "MIB",
            "BearerTokenAuth",
            "parse_tokens",
            "OPEN_SERVICES",
            "HEALTH_SERVICE_NAME",
            "MISSING_TOKEN",
            "INVALID_TOKEN",
            "ServerTls",
            "ObservingInterceptor",
            "RpcObserver",
            "observation_reporter",
            "STATUS_CODES",
            "INTERNAL_DETAILS",
            "status_for",
            "NotServedHere",
            "service_handler",
            "MalformedRequest",
            "list_workers_seam",
            "job_from_proto",
            "worker_info_to_proto",
        ]
    )
    for name in jobqueue.grpc.__all__:
        assert hasattr(jobqueue.grpc, name)
