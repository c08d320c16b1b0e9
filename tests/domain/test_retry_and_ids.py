from __future__ import annotations

import os
import random
import uuid

from hypothesis import given
from hypothesis import strategies as st

from jobqueue.domain import (
    Job,
    JobStatus,
    Lease,
    OutcomeKind,
    RetryPolicy,
    UuidV7Generator,
    failure_outcome,
)


@given(attempt=st.integers(min_value=1, max_value=10_000), seed=st.integers())
def test_delay_is_within_the_capped_ceiling(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base_ms=1_000, factor=2.0, cap_ms=60_000)
    delay = policy.delay_ms(attempt, random.Random(seed))
    assert 0 <= delay <= min(60_000, 1_000 * 2 ** (attempt - 1))


def test_ceiling_grows_exponentially_then_caps() -> None:
    policy = RetryPolicy(base_ms=100, factor=2.0, cap_ms=1_000, jitter=False)
    assert [policy.delay_ms(n) for n in range(1, 7)] == [100, 200, 400, 800, 1_000, 1_000]


def test_jitter_spreads_retries() -> None:
    policy = RetryPolicy(base_ms=1_000, cap_ms=1_000)
    rng = random.Random(7)
    assert len({policy.delay_ms(1, rng) for _ in range(50)}) > 10


def lease(attempts: int, max_attempts: int | None = None) -> Lease:
    job = Job(
        id=str(uuid.uuid4()),
        type="t",
        payload=b"",
        status=JobStatus.RUNNING,
        execution_time_ms=0,
        created_at=0,
        updated_at=0,
        attempts=attempts,
        max_attempts=max_attempts,
    )
    return Lease(job, "token", 0)


def test_failure_retries_until_attempts_are_spent() -> None:
    policy = RetryPolicy(base_ms=10, jitter=False)
    retry = failure_outcome(lease(1, 3), "boom", policy=policy)
    assert (retry.kind, retry.retry_delay_ms, retry.error) == (OutcomeKind.RETRY, 10, "boom")
    assert failure_outcome(lease(3, 3), "boom").kind is OutcomeKind.FAIL
    assert failure_outcome(lease(1, 3), "no", permanent=True).kind is OutcomeKind.FAIL
    assert failure_outcome(lease(2), "x", default_max_attempts=2).kind is OutcomeKind.FAIL


def test_a_retry_is_a_delay_that_grows_with_the_attempt_not_a_time() -> None:
    # The store adds the delay to its own clock, so nothing here may depend on
    # the worker's: the same lease gives the same delay whatever time it is.
    policy = RetryPolicy(base_ms=100, factor=2.0, cap_ms=1_000, jitter=False)
    delays = [failure_outcome(lease(n, 10), "e", policy=policy).retry_delay_ms for n in (1, 2, 5)]
    assert delays == [100, 200, 1_000]
    failed = failure_outcome(lease(10, 10), "e", policy=policy)
    assert (failed.kind, failed.retry_delay_ms) == (OutcomeKind.FAIL, None)


def test_uuid7_ids_are_valid_and_increase() -> None:
    ids = UuidV7Generator()
    values = [ids.new_id() for _ in range(5_000)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    parsed = uuid.UUID(values[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_a_forked_child_draws_other_random_bits_than_its_parent() -> None:
    ids = UuidV7Generator()
    ids.new_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its ids' random tails and leave at once
        os.write(write, ",".join(ids.new_id()[-12:] for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child_tails = set(pipe.read().split(","))
    parent_tails = {ids.new_id()[-12:] for _ in range(50)}
    assert len(child_tails) == 50
    assert not child_tails & parent_tails
