"""A job that uses no flow-control option takes a shortcut in ``_new_job``: the same rules hold.

The shortcut skips the validators whose only answer for it is the default;
what it still checks (type, payload, times, attempts, key) must refuse as the
full path does, and a type remembered as valid never lets an invalid one by.
"""

from __future__ import annotations

import pytest

from jobqueue.domain import EnqueueRequest, InvalidJob, JobService, Limits, SystemClock
from jobqueue.domain import UuidV7Generator as Ids
from jobqueue.memory import MemoryJobStore


def service() -> JobService:
    return JobService(
        MemoryJobStore(), clock=SystemClock(), ids=Ids(), limits=Limits(max_payload_bytes=4)
    )


async def test_a_plain_job_is_stored_as_the_full_path_stores_it() -> None:
    jobs = service()
    plain = await jobs.enqueue(EnqueueRequest(type="t", payload=b"p", max_attempts=3))
    full = await jobs.enqueue(EnqueueRequest(type="t", payload=b"p", max_attempts=3, priority=1))
    assert (plain.priority, plain.limit_key, plain.unique, dict(plain.headers)) == (
        0,
        None,
        None,
        {},
    )
    assert (plain.max_attempts, plain.payload, plain.status) == (3, b"p", full.status)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (EnqueueRequest(type="bad type"), "type"),
        (EnqueueRequest(type=""), "type"),
        (EnqueueRequest(type="t", payload=b"12345"), "payload"),
        (EnqueueRequest(type="t", execution_time_ms=-1), "execution_time_ms"),
        (EnqueueRequest(type="t", max_attempts=0), "max_attempts"),
        (EnqueueRequest(type="t", idempotency_key=""), "idempotency_key"),
        (EnqueueRequest(type="t", priority=False), "priority"),
        (EnqueueRequest(type="t", unique_window_ms=5), "unique_key"),
    ],
)
async def test_the_shortcut_refuses_what_the_full_path_refuses(
    request_: EnqueueRequest, field: str
) -> None:
    jobs = service()
    await jobs.enqueue(EnqueueRequest(type="t"))  # "t" is now a remembered type
    with pytest.raises(InvalidJob) as raised:
        await jobs.enqueue(request_)
    assert raised.value.field == field
    with pytest.raises(InvalidJob) as raised:
        await jobs.enqueue_many([EnqueueRequest(type="t"), request_])
    assert raised.value.field == f"jobs[1].{field}"


async def test_remembered_types_stay_bounded_and_checked() -> None:
    jobs = service()
    for i in range(3_000):
        await jobs.enqueue(EnqueueRequest(type=f"t{i}"))
    assert len(jobs._known_types) <= 1_024
    with pytest.raises(InvalidJob):
        await jobs.enqueue(EnqueueRequest(type="t 1"))
