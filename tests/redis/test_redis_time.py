"""Redis decides time: a host whose clock is off changes nothing (issue 11, item 1).

Every store here shares one queue. The honest one runs on the system clock;
the other on a clock 40 s ahead or 60 s behind, as a host with a wrong clock
would, and must sweep, claim, renew and retry exactly as the honest one does,
because every script reads Redis's TIME instead. (Skew 0 runs the same
assertions on an honest pair: the baseline, which passed before too.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import (
    Job,
    JobStatus,
    LeaseState,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings

pytestmark = pytest.mark.redis

LEASE = 30_000


class SkewedClock:
    """A host's clock: the system's, off by ``offset_ms`` (a fake of the Clock port)."""

    def __init__(self, offset_ms: int) -> None:
        self.offset_ms = offset_ms
        self.system = SystemClock()

    def now_ms(self) -> int:
        return self.system.now_ms() + self.offset_ms


async def redis_now(raw: aioredis.Redis) -> int:
    seconds, micros = await raw.time()
    return int(seconds) * 1000 + int(micros) // 1000


@pytest.fixture
async def honest(redis_url: str, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    store = RedisJobStore(
        RedisStoreSettings(url=redis_url, key_prefix=key_prefix), clock=SystemClock()
    )
    yield store
    await store.close()


@pytest.fixture(params=[0, 40_000, -60_000], ids=["honest", "ahead-40s", "behind-60s"])
def skew_ms(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def skewed_clock(skew_ms: int) -> SkewedClock:
    return SkewedClock(skew_ms)


@pytest.fixture
async def skewed(
    redis_url: str, key_prefix: str, skewed_clock: SkewedClock
) -> AsyncIterator[RedisJobStore]:
    store = RedisJobStore(
        RedisStoreSettings(url=redis_url, key_prefix=key_prefix), clock=skewed_clock
    )
    yield store
    await store.close()


def job_made_at(now: int, *, delay_ms: int = 0) -> Job:
    """A new job as a producer whose clock reads ``now`` builds it."""
    return Job(
        id=UuidV7Generator().new_id(),
        type="t",
        payload=b"{}",
        status=JobStatus.PENDING,
        execution_time_ms=now + delay_ms,
        created_at=now,
        updated_at=now,
    )


async def test_no_host_claims_a_job_before_it_is_due(
    honest: RedisJobStore, skewed: RedisJobStore
) -> None:
    # Due in 20 s by an honest clock: a host 40 s ahead once claimed it at once.
    await honest.add([job_made_at(SystemClock().now_ms(), delay_ms=20_000)])
    assert await skewed.claim(["t"], limit=1, lease_ms=LEASE) == []
    assert await honest.claim(["t"], limit=1, lease_ms=LEASE) == []


async def test_a_job_due_at_once_is_due_at_redis_now_whoever_adds_it(
    honest: RedisJobStore, skewed: RedisJobStore, skewed_clock: SkewedClock, raw: aioredis.Redis
) -> None:
    # A host 40 s ahead once made its "due now" jobs wait 40 s for honest workers.
    before = await redis_now(raw)
    job = job_made_at(skewed_clock.now_ms())
    (stored,) = await skewed.add([job])
    after = await redis_now(raw)
    assert before <= stored.created_at == stored.execution_time_ms <= after
    (lease,) = await honest.claim(["t"], limit=1, lease_ms=LEASE)
    assert (lease.job.id, lease.job.execution_time_ms) == (job.id, stored.execution_time_ms)


async def test_no_host_sweeps_a_fresh_lease(honest: RedisJobStore, skewed: RedisJobStore) -> None:
    # A sweeper 40 s ahead once requeued a lease claimed a moment before: the job ran twice.
    await honest.add([job_made_at(SystemClock().now_ms())])
    (lease,) = await honest.claim(["t"], limit=1, lease_ms=LEASE)
    assert await skewed.requeue_expired() == 0
    assert await honest.renew([(lease.job.id, lease.token)], lease_ms=LEASE) == [LeaseState.ACTIVE]
    stored = await honest.get(lease.job.id)
    assert stored is not None
    assert (stored.status, stored.attempts) == (JobStatus.RUNNING, 1)


async def test_every_host_gets_leases_that_last_their_full_length(
    honest: RedisJobStore, skewed: RedisJobStore, raw: aioredis.Redis
) -> None:
    # A worker 60 s behind once received leases that had expired 30 s before.
    await honest.add([job_made_at(SystemClock().now_ms())])
    before = await redis_now(raw)
    (lease,) = await skewed.claim(["t"], limit=1, lease_ms=LEASE)
    after = await redis_now(raw)
    assert before + LEASE <= lease.deadline_ms <= after + LEASE
    assert await honest.requeue_expired() == 0
    renewal = [(lease.job.id, lease.token)]
    assert await skewed.renew(renewal, lease_ms=LEASE) == [LeaseState.ACTIVE]
    done = Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)
    assert await skewed.settle([done]) == [True]
    stored = await honest.get(lease.job.id)
    assert stored is not None
    assert stored.status is JobStatus.COMPLETED


async def test_a_retry_is_due_its_delay_after_redis_now_whoever_asks(
    honest: RedisJobStore, skewed: RedisJobStore, raw: aioredis.Redis
) -> None:
    await honest.add([job_made_at(SystemClock().now_ms())])
    (lease,) = await skewed.claim(["t"], limit=1, lease_ms=LEASE)
    retry = Outcome(
        job_id=lease.job.id, token=lease.token, kind=OutcomeKind.RETRY, retry_delay_ms=5_000
    )
    before = await redis_now(raw)
    assert await skewed.settle([retry]) == [True]
    after = await redis_now(raw)
    stored = await honest.get(lease.job.id)
    assert stored is not None
    assert before + 5_000 <= stored.execution_time_ms <= after + 5_000
    assert await honest.claim(["t"], limit=1, lease_ms=LEASE) == []
    assert await skewed.claim(["t"], limit=1, lease_ms=LEASE) == []
