"""The job ``add`` returns is the one it was given, stamped with Redis's time.

``_stamped`` writes slots straight (see _enqueue.py): it must build exactly
what the keyword call it replaced built, for a job with every field set.
"""

from __future__ import annotations

import dataclasses

from jobqueue.domain import Job, JobStatus, OnConflict, UniqueRule, UniqueScope
from jobqueue.redis._enqueue import _stamped

FULL = Job(
    id="0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87",
    type="t",
    payload=b"p",
    status=JobStatus.PENDING,
    execution_time_ms=50,
    created_at=10,
    updated_at=11,
    attempts=2,
    max_attempts=5,
    last_error="boom",
    result=b"r",
    cancel_requested=True,
    idempotency_key="ik",
    priority=3,
    limit_key="tenant",
    unique=UniqueRule(key="u", scope=UniqueScope.ACTIVE, on_conflict=OnConflict.REJECT),
    progress=0.5,
    progress_message="half",
    headers={"h": "v"},
)


def reference(job: Job, now: int) -> Job:
    """The keyword call _stamped made before."""
    due = now if job.execution_time_ms == job.created_at else job.execution_time_ms
    return dataclasses.replace(
        job,
        execution_time_ms=due,
        created_at=now,
        updated_at=now,
        progress=None,
        progress_message=None,
    )


def test_stamped_is_the_keyword_built_job() -> None:
    for job in (FULL, dataclasses.replace(FULL, execution_time_ms=10)):
        stamped = _stamped(job, 99)
        assert stamped == reference(job, 99)
        assert [getattr(stamped, f.name) for f in dataclasses.fields(Job)] == [
            getattr(reference(job, 99), f.name) for f in dataclasses.fields(Job)
        ]
    assert _stamped(dataclasses.replace(FULL, execution_time_ms=10), 99).execution_time_ms == 99
    assert _stamped(FULL, 99).execution_time_ms == 50
