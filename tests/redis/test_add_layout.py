"""add.lua's argument layout: a plain job is two arguments, options only when set.

The head names the options that follow it (add.lua's header), so one call
mixes jobs of every shape with a different stride each. This checks that such
a call stores every job as the fixed five-argument layout did: the same hash
fields, the same options read back, one counter increment per job, and that
a plain job costs two arguments.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import Job, JobStatus, OnConflict, UniqueRule, UniqueScope
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._core import Arg

# The options a job may carry: idempotency key, unique rule, headers, limit key, priority.
SHAPES = [
    shape
    for shape in itertools.product((False, True), repeat=5)
    if not (shape[3] and shape[4])  # a limit key is never beside a priority
]


def _job(index: int, shape: Sequence[bool]) -> Job:
    ikey, unique, headers, limit_key, priority = shape
    return Job(
        id=str(uuid.uuid4()),
        type="t",
        payload=f"p{index}".encode(),
        status=JobStatus.PENDING,
        execution_time_ms=5,
        created_at=5,
        updated_at=5,
        max_attempts=3 if index % 2 else None,
        idempotency_key=f"i{index}" if ikey else None,
        unique=(
            UniqueRule(key=f"u{index}", scope=UniqueScope.ACTIVE, on_conflict=OnConflict.REJECT)
            if unique
            else None
        ),
        headers={"h": str(index)} if headers else {},
        limit_key=f"k{index}" if limit_key else None,
        priority=index % 3 + 1 if priority else 0,
    )


def _fields(job: Job) -> set[str]:
    """The job hash's fields add.lua writes for ``job`` (as the five-argument layout did)."""
    fields = {"t", "p", "s", "e", "c"}
    for name, present in (
        ("m", job.max_attempts is not None),
        ("k", job.idempotency_key is not None),
        ("uk", job.unique is not None),
        ("uq", job.unique is not None),
        ("h", bool(job.headers)),
        ("lk", job.limit_key is not None),
        ("pr", job.priority != 0),
    ):
        if present:
            fields.add(name)
    return fields


@pytest.fixture
def jobs() -> list[Job]:
    # Every shape, each between plain jobs: strides 2 and 2 + options alternate.
    plain = (False,) * 5
    return [
        _job(index, shape)
        for index, shape in enumerate(s for shape in SHAPES for s in (plain, shape))
    ]


async def test_mixed_shapes_in_one_call(redis_url: str, jobs: list[Job]) -> None:
    prefix = f"al-{uuid.uuid4().hex[:8]}"
    store = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=prefix))
    raw = aioredis.Redis.from_url(redis_url)
    sent: list[list[Arg]] = []
    core = store._core
    script = core.script

    async def spy(name: str, args: Sequence[Arg], keys: Sequence[str] | None = None) -> Any:
        if name == "add":
            sent.append(list(args))
        return await script(name, args, keys)

    core.script = spy  # type: ignore[method-assign]
    try:
        stored = await store.add(jobs)
        assert [job.id for job in stored] == [job.id for job in jobs]
        # Two arguments a plain job, one more per option it sets.
        options = sum(
            bool(job.idempotency_key) + (job.unique is not None) + bool(job.headers) for job in jobs
        )
        assert len(sent) == 1
        assert len(sent[0]) == 2 + 2 * len(jobs) + options
        namespace = core.namespaces[0]
        for job in jobs:
            got = await store.get(job.id)
            assert got is not None
            assert (
                got.payload,
                got.max_attempts,
                got.idempotency_key,
                got.unique,
                dict(got.headers),
                got.limit_key,
                got.priority,
                got.status,
            ) == (
                job.payload,
                job.max_attempts,
                job.idempotency_key,
                job.unique,
                dict(job.headers),
                job.limit_key,
                job.priority,
                JobStatus.PENDING,
            )
            held = await raw.hkeys(f"{namespace}j:{job.id}")
            assert {f.decode() if isinstance(f, bytes) else f for f in held} == _fields(job)
        counted = await raw.hget(f"{namespace}ct", "enqueued:t")
        assert counted is not None
        assert int(counted) == len(jobs)
        # Options still act: the same idempotency key answers with the job stored first.
        keyed = next(job for job in jobs if job.idempotency_key)
        again = await store.add([_job(999, (False,) * 5), _retry(keyed)])
        assert again[1].id == keyed.id
    finally:
        await raw.aclose()
        await store.close()


def _retry(job: Job) -> Job:
    """A new job under ``job``'s idempotency key (and nothing else of it)."""
    return Job(
        id=str(uuid.uuid4()),
        type=job.type,
        payload=b"again",
        status=JobStatus.PENDING,
        execution_time_ms=5,
        created_at=5,
        updated_at=5,
        idempotency_key=job.idempotency_key,
    )
