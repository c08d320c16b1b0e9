"""``job_from_hash`` reads every stored field into its own Job field.

It builds the Job positionally (``stored_job``): a swapped position would put
one field's value in another. Every field here holds a value no other field of
its type holds, so a swap shows; the hash is written as the scripts write it.
"""

from __future__ import annotations

import json

from jobqueue.domain import Job, JobStatus, OnConflict, UniqueRule, UniqueScope
from jobqueue.redis._codec import job_from_hash, pairs_to_dict

JOB_ID = "0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87"


def test_every_stored_field_reads_into_its_own_job_field() -> None:
    stored = {
        b"t": b"email",
        b"p": b"payload",
        b"s": b"4",
        b"e": b"1764600000007",
        b"c": b"1764600000003",
        b"u": b"1764600000004",
        b"a": b"2",
        b"m": b"6",
        b"err": b"boom",
        b"r": b"result",
        b"x": b"1",
        b"k": b"idem",
        b"pr": b"9",
        b"lk": b"tenant",
        b"uk": b"unique",
        b"uq": b"1 2 5000",
        b"pg": b"0.5",
        b"pm": b"half",
        b"h": json.dumps({"traceparent": "tp"}).encode(),
    }
    assert job_from_hash(JOB_ID, stored) == Job(
        id=JOB_ID,
        type="email",
        payload=b"payload",
        status=JobStatus.FAILED,
        execution_time_ms=1764600000007,
        created_at=1764600000003,
        updated_at=1764600000004,
        attempts=2,
        max_attempts=6,
        last_error="boom",
        result=b"result",
        cancel_requested=True,
        idempotency_key="idem",
        priority=9,
        limit_key="tenant",
        unique=UniqueRule(
            key="unique", scope=UniqueScope.PENDING, on_conflict=OnConflict(2), window_ms=5000
        ),
        progress=0.5,
        progress_message="half",
        headers={"traceparent": "tp"},
    )


def test_a_plain_hash_leaves_the_options_unset() -> None:
    flat = [b"t", b"email", b"s", b"1", b"e", b"5", b"c", b"3"]
    job = job_from_hash(JOB_ID, pairs_to_dict(flat))
    assert job == Job(
        id=JOB_ID,
        type="email",
        payload=b"",
        status=JobStatus.PENDING,
        execution_time_ms=5,
        created_at=3,
        updated_at=3,  # no 'u' yet: created
    )
    assert job.headers == {}
    assert job.headers is not job_from_hash(JOB_ID, pairs_to_dict(flat)).headers
