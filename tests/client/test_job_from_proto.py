"""``job_from_proto`` writes Job's slots straight (_convert.py): the Job a keyword call built."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from jobqueue.client import Job, JobStatus
from jobqueue.client._convert import job_from_proto
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb

ID = "0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87"


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_a_full_wire_job_maps_field_by_field() -> None:
    message = pb.Job(
        id=ID,
        type="t",
        payload=b"p",
        status=pb.JOB_STATUS_RUNNING,
        execution_time_ms=3_000,
        created_at=1_000,
        updated_at=2_000,
        attempts=2,
        max_attempts=5,
        last_error="boom",
        result=b"r",
        cancel_requested=True,
        idempotency_key="ik",
        unique_key="u",
        progress=0.5,
        progress_message="half",
        headers={"h": "v"},
        priority=3,
        limit_key="tenant",
    )
    expected = Job(
        id=ID,
        type="t",
        payload=b"p",
        status=JobStatus.RUNNING,
        run_at=at(3_000),
        created_at=at(1_000),
        updated_at=at(2_000),
        attempts=2,
        max_attempts=5,
        last_error="boom",
        result=b"r",
        cancel_requested=True,
        idempotency_key="ik",
        unique_key="u",
        progress=0.5,
        progress_message="half",
        headers={"h": "v"},
        priority=3,
        limit_key="tenant",
    )
    job = job_from_proto(message)
    assert job == expected
    assert dataclasses.astuple(job) == dataclasses.astuple(expected)


def test_a_plain_wire_job_leaves_the_defaults() -> None:
    message = pb.Job(id=ID, type="t", status=pb.JOB_STATUS_PENDING, execution_time_ms=1)
    job = job_from_proto(message)
    assert job == Job(
        id=ID,
        type="t",
        payload=b"",
        status=JobStatus.PENDING,
        run_at=at(1),
        created_at=at(0),
        updated_at=at(0),
        attempts=0,
    )
    assert job.headers == {}
    assert job.headers is not job_from_proto(message).headers  # a dict of its own, as before
