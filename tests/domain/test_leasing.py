"""LeaseService, the worker use cases both paths share, over the in-memory store.

The rules it applies to outcomes (result limit, retry delay bounds, error
length) must hold for each outcome on its own: one the rules refuse fails that
job, never the batch it came in.
"""

from __future__ import annotations

import pytest

from jobqueue.domain import (
    MAX_RETRY_DELAY_MS,
    Job,
    JobStatus,
    LeaseService,
    Limits,
    ManualClock,
    Outcome,
    OutcomeKind,
    UuidV7Generator,
)
from jobqueue.memory import MemoryJobStore

LIMIT = 64


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def leases(clock: ManualClock) -> LeaseService:
    return LeaseService(MemoryJobStore(clock=clock), limits=Limits(max_result_bytes=LIMIT))


def outcome(kind: OutcomeKind, **fields: object) -> Outcome:
    return Outcome(job_id="j", token="t", kind=kind, **fields)  # type: ignore[arg-type]


def test_a_result_over_the_limit_fails_the_job_with_the_reason(leases: LeaseService) -> None:
    judged = leases.judge(outcome(OutcomeKind.COMPLETE, result=b"x" * (LIMIT + 1)))
    assert (judged.kind, judged.result) == (OutcomeKind.FAIL, None)
    assert judged.error == f"result too large: {LIMIT + 1} bytes > limit of {LIMIT}"
    at_limit = outcome(OutcomeKind.COMPLETE, result=b"x" * LIMIT)
    assert leases.judge(at_limit) == at_limit


@pytest.mark.parametrize(
    ("asked", "applied"),
    [(-5, 0), (0, 0), (1_500, 1_500), (MAX_RETRY_DELAY_MS + 1, MAX_RETRY_DELAY_MS)],
)
def test_a_retry_delay_is_kept_between_now_and_a_year(
    leases: LeaseService, asked: int, applied: int
) -> None:
    judged = leases.judge(outcome(OutcomeKind.RETRY, error="e", retry_delay_ms=asked))
    assert (judged.kind, judged.retry_delay_ms) == (OutcomeKind.RETRY, applied)


def test_a_long_error_is_truncated(leases: LeaseService) -> None:
    judged = leases.judge(outcome(OutcomeKind.FAIL, error="e" * 100_000))
    assert judged.error is not None
    assert len(judged.error) < 100_000
    assert judged.error.endswith("...")


async def test_settle_fails_only_the_job_whose_result_is_too_large(
    leases: LeaseService, clock: ManualClock
) -> None:
    ids = UuidV7Generator()
    now = clock.now_ms()
    jobs = [
        Job(
            id=ids.new_id(),
            type="t",
            payload=b"",
            status=JobStatus.PENDING,
            execution_time_ms=now,
            created_at=now,
            updated_at=now,
        )
        for _ in range(3)
    ]
    await leases.store.add(jobs)
    claimed = await leases.claim(["t", "t"], limit=3, lease_ms=10_000)
    results = [b"small", b"x" * (LIMIT + 1), b"also small"]
    applied = await leases.settle(
        [
            Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE, result=r)
            for lease, r in zip(claimed, results, strict=True)
        ]
    )
    assert applied == [True, True, True]
    stored = [await leases.store.get(lease.job.id) for lease in claimed]
    assert [job.status for job in stored if job] == [
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.COMPLETED,
    ]
    assert [job.result for job in stored if job] == [b"small", None, b"also small"]
