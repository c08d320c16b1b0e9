"""One `store` fixture parametrized over every JobStore adapter (dramatiq's pattern)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from jobqueue.domain import Job, JobStatus, JobStore, ManualClock, UuidV7Generator
from jobqueue.memory import MemoryJobStore, MemoryStoreSettings
from jobqueue.redis import RedisJobStore, RedisStoreSettings

RETENTION_MS = 60_000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, clock: ManualClock, key_prefix: str
) -> AsyncIterator[JobStore]:
    if request.param == "memory":
        adapter: JobStore = MemoryJobStore(
            MemoryStoreSettings(retention_ms=RETENTION_MS), clock=clock
        )
    else:
        url: str = request.getfixturevalue("redis_url")
        adapter = RedisJobStore(
            RedisStoreSettings(url=url, key_prefix=key_prefix, retention_ms=RETENTION_MS),
            clock=clock,
        )
    yield adapter
    await adapter.close()


MakeJob = Callable[..., Job]


@pytest.fixture
def make_job(clock: ManualClock) -> MakeJob:
    ids = UuidV7Generator()

    def make(
        job_type: str = "email",
        payload: bytes = b"{}",
        *,
        delay_ms: int = 0,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        now = clock.now_ms()
        return Job(
            id=ids.new_id(),
            type=job_type,
            payload=payload,
            status=JobStatus.PENDING,
            execution_time_ms=now + delay_ms,
            created_at=now,
            updated_at=now,
            max_attempts=max_attempts,
            idempotency_key=idempotency_key,
        )

    return make
