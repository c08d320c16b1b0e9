"""LeaseService, the worker use cases both paths share, over the in-memory store.

The rules it applies to outcomes (result limit, retry delay bounds, error
length) must hold for each outcome on its own: one the rules refuse fails that
job, never the batch it came in.
"""

from __future__ import annotations

import pytest

from jobqueue.domain import (
    MAX_RETRY_DELAY_MS,
    InvalidJob,
    Job,
    JobStatus,
    LeaseRules,
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


# -- the claim, settle and renew rules, the same on the direct path as on the server --


def new_jobs(clock: ManualClock, count: int, job_type: str = "t") -> list[Job]:
    ids = UuidV7Generator()
    now = clock.now_ms()
    return [
        Job(
            id=ids.new_id(),
            type=job_type,
            payload=b"",
            status=JobStatus.PENDING,
            execution_time_ms=now,
            created_at=now,
            updated_at=now,
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    ("types", "fields", "at_fault"),
    [
        ([], {}, "types"),
        (["ok", "bad type"], {}, "types[1]"),
        ([f"t{i}" for i in range(4)], {}, "types"),
        (["t"], {"limit": -1}, "max_jobs"),
        (["t"], {"lease_ms": 99}, "lease_ms"),
        (["t"], {"lease_ms": 60_001}, "lease_ms"),
        (["t"], {"wait_ms": -1}, "wait_ms"),
    ],
)
async def test_a_bad_claim_names_its_field_and_leases_nothing(
    clock: ManualClock, types: list[str], fields: dict[str, int], at_fault: str
) -> None:
    rules = LeaseRules(max_lease_ms=60_000, max_claim_types=3)
    leases = LeaseService(MemoryJobStore(clock=clock), rules=rules)
    await leases.store.add(new_jobs(clock, 1))
    with pytest.raises(InvalidJob) as raised:
        await leases.claim(types, **{"limit": 1, **fields})
    assert raised.value.field == at_fault
    assert await leases.claim(["t"], limit=1) != []


async def test_a_claim_is_capped_by_the_rules_and_the_transport(clock: ManualClock) -> None:
    leases = LeaseService(MemoryJobStore(clock=clock), rules=LeaseRules(max_claim_jobs=5))
    await leases.store.add(new_jobs(clock, 20))
    assert len(await leases.claim(["t", "t"], limit=0)) == 1
    assert len(await leases.claim(["t"], limit=100)) == 5
    assert len(await leases.claim(["t"], limit=100, max_jobs=2)) == 2
    (lease,) = await leases.claim(["t"], limit=1, lease_ms=0)
    assert lease.deadline_ms == clock.now_ms() + LeaseRules().default_lease_ms


async def test_a_malformed_outcome_is_refused_alone(
    leases: LeaseService, clock: ManualClock
) -> None:
    await leases.store.add(new_jobs(clock, 2))
    first, second = await leases.claim(["t"], limit=2, lease_ms=10_000)
    done = [
        Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
        for lease in (first, second)
    ]
    bad_id = Outcome(job_id="nope", token="t", kind=OutcomeKind.COMPLETE)
    no_token = Outcome(job_id=first.job.id, token="", kind=OutcomeKind.FAIL)
    applied = await leases.settle([done[0], bad_id, no_token, None, done[1]])
    assert applied == [True, False, False, False, True]
    for lease in (first, second):
        job = await leases.store.get(lease.job.id)
        assert job is not None
        assert job.status is JobStatus.COMPLETED


async def test_batches_over_the_limit_are_refused_whole(clock: ManualClock) -> None:
    leases = LeaseService(MemoryJobStore(clock=clock), limits=Limits(max_batch_size=2))
    await leases.store.add(new_jobs(clock, 3))
    claimed = await leases.claim(["t"], limit=3, lease_ms=10_000)
    outcomes = [
        Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
        for lease in claimed
    ]
    with pytest.raises(InvalidJob) as raised:
        await leases.settle(outcomes)
    assert raised.value.field == "outcomes"
    pairs = [(lease.job.id, lease.token) for lease in claimed]
    with pytest.raises(InvalidJob) as raised:
        await leases.renew(pairs, lease_ms=1_000)
    assert raised.value.field == "leases"
    assert await leases.settle(outcomes[:2]) == [True, True]


async def test_a_bad_renewal_names_its_entry_and_renews_nothing(
    leases: LeaseService, clock: ManualClock
) -> None:
    await leases.store.add(new_jobs(clock, 1))
    (lease,) = await leases.claim(["t"], limit=1, lease_ms=1_000)
    good = (lease.job.id, lease.token)
    for pairs, at_fault in (
        ([good, ("nope", "t")], "leases[1].job_id"),
        ([good, (lease.job.id, "")], "leases[1].token"),
        ([good], "lease_ms"),
    ):
        with pytest.raises(InvalidJob) as raised:
            await leases.renew(pairs, lease_ms=1 if at_fault == "lease_ms" else 5_000)
        assert raised.value.field == at_fault
    assert await leases.requeue_expired() == 0
    clock.advance(1_001)
    assert await leases.requeue_expired() == 1


def test_an_old_workers_retry_time_becomes_a_delay_from_now(clock: ManualClock) -> None:
    leases = LeaseService(MemoryJobStore(clock=clock), clock=clock)
    assert leases.delay_until(clock.now_ms() + 2_500) == 2_500
    assert leases.delay_until(clock.now_ms() - 5) == 0


def test_lease_rules_refuse_an_impossible_default() -> None:
    with pytest.raises(ValueError, match="default_lease_ms"):
        LeaseRules(default_lease_ms=50)
