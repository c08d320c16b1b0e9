"""One plain job goes through add_one.lua, with exactly add.lua's effects.

add_one.lua is a short script for the hottest call (issue 17): one job with
no option, no batch key. Its writes must be add.lua's, key by key: the job
hash, its queue, the type indexes (only when the queue is new), the counter
and the wake-up token (wake_for's rule). The same sequence of jobs is stored
under two prefixes, one through each script, and the keys compared with
Redis's times replaced by a marker.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from jobqueue.domain import Job, JobStatus, OnConflict, UniqueRule
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._core import Arg

_HOUR_MS = 3_600_000


def _job(job_type: str, *, due: int | None, created: int, max_attempts: int | None = None) -> Job:
    return Job(
        id=str(uuid.uuid4()),
        type=job_type,
        payload=b"p" + job_type.encode(),
        status=JobStatus.PENDING,
        execution_time_ms=created if due is None else due,
        created_at=created,
        updated_at=created,
        max_attempts=max_attempts,
    )


async def _redis_ms(raw: aioredis.Redis) -> int:
    seconds, micros = await raw.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _dump(raw: Any, ns: str, window: tuple[int, int]) -> dict[str, Any]:
    """Every key under ``ns``, its name without ``ns``, Redis's times as 'NOW'."""

    def t(value: Any) -> object:
        number = float(value)
        return "NOW" if window[0] <= number <= window[1] else number

    out: dict[str, Any] = {}
    for key in sorted(await raw.keys(ns + "*")):
        name = key.decode()[len(ns) :]
        kind = (await raw.type(key)).decode()
        if kind == "hash":
            fields = await raw.hgetall(key)
            value: Any = {f.decode(): t(v) if f in (b"c", b"e") else v for f, v in fields.items()}
        elif kind == "zset":
            # Sorted: members scored by Redis's time tie as 'NOW' here, while
            # each store's own milliseconds ordered them (ids are random).
            value = sorted(
                ((m, t(s)) for m, s in await raw.zrange(key, 0, -1, withscores=True)),
                key=lambda entry: (str(entry[1]), entry[0]),
            )
        elif kind == "list":
            value = await raw.lrange(key, 0, -1)
        else:
            value = await raw.get(key)
        out[name] = (kind, value)
    return out


async def test_add_one_writes_what_add_writes(redis_url: str) -> None:
    raw = aioredis.Redis.from_url(redis_url)
    fast, slow = (
        RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=f"a1-{uuid.uuid4().hex[:8]}"))
        for _ in range(2)
    )
    used: list[str] = []
    script = fast._core.script

    async def spy(name: str, args: Sequence[Arg], keys: Sequence[str] | None = None) -> Any:
        used.append(name)
        return await script(name, args, keys)

    fast._core.script = spy  # type: ignore[method-assign]
    try:
        await slow._core.resolve_layout(writing=True)  # as add does before its script
        start = await _redis_ms(raw)
        later = start + _HOUR_MS
        steps: list[Job | str] = [
            _job("t1", due=None, created=start),  # a new queue: indexed, a token
            _job("t1", due=None, created=start, max_attempts=3),  # a token waits already
            "drop w:t1",
            _job("t1", due=None, created=start),  # due now, not the head: a token
            _job("t2", due=later, created=start),  # later, but the head of a new queue
            "drop w:t2",
            _job("t2", due=later + 5, created=start),  # not the head: no token
            _job("t2", due=later - 5, created=start),  # the new head: a token
            "drop w:t2",
            _job("t2", due=start - 10, created=start),  # overdue: a token
        ]
        for step in steps:
            if isinstance(step, str):
                for store in (fast, slow):
                    await raw.delete(store._core.namespaces[0] + step.split()[1])
                continue
            (got,) = await fast.add([step])
            (want,) = await slow._enqueuer._add_now([step], None)
            assert got.id == want.id == step.id
            assert _untimed(got) == _untimed(want)
            assert got == await fast.get(step.id)
        end = await _redis_ms(raw)
        assert set(used) == {"add_one"}
        fast_keys = await _dump(raw, fast._core.namespaces[0], (start, end))
        slow_keys = await _dump(raw, slow._core.namespaces[0], (start, end))
        assert fast_keys == slow_keys
        assert {"tz", "ts:1", "ct", "q:t1", "q:t2", "w:t1", "w:t2"} <= set(fast_keys)
    finally:
        await raw.aclose()
        await fast.close()
        await slow.close()


async def test_only_one_plain_job_takes_the_short_script(redis_url: str) -> None:
    prefix = f"a1-{uuid.uuid4().hex[:8]}"
    store = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=prefix))
    used: list[str] = []
    script = store._core.script

    async def spy(name: str, args: Sequence[Arg], keys: Sequence[str] | None = None) -> Any:
        used.append(name)
        return await script(name, args, keys)

    store._core.script = spy  # type: ignore[method-assign]
    now = 1_700_000_000_000
    plain = _job("t", due=None, created=now)
    try:
        for job in (
            plain,
            Job(**{**_fields(plain), "id": str(uuid.uuid4()), "priority": 2}),
            Job(**{**_fields(plain), "id": str(uuid.uuid4()), "limit_key": "c"}),
            Job(**{**_fields(plain), "id": str(uuid.uuid4()), "idempotency_key": "k"}),
            Job(**{**_fields(plain), "id": str(uuid.uuid4()), "headers": {"h": "v"}}),
            Job(
                **{
                    **_fields(plain),
                    "id": str(uuid.uuid4()),
                    "unique": UniqueRule(key="u", on_conflict=OnConflict.REJECT),
                }
            ),
        ):
            await store.add([job])
        await store.add([_job("t", due=None, created=now)], batch_key="b")
        await store.add([_job("t", due=None, created=now), _job("t", due=None, created=now)])
        assert used == ["add_one"] + ["add"] * 7
    finally:
        await store.close()


def _untimed(job: Job) -> Job:
    """The job with Redis's times left out ('due at once' kept as -1)."""
    due = -1 if job.execution_time_ms == job.created_at else job.execution_time_ms
    return dataclasses.replace(job, execution_time_ms=due, created_at=0, updated_at=0)


def _fields(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in job.__dataclass_fields__}
