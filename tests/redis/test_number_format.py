"""Whole numbers the scripts send Redis are written whole (redis/redis#13113).

Redis 7.2.0 to 7.2.4 turn a Lua number given to ``redis.call`` into text with
fpconv_dtoa, which writes multiples of 1e8 in exponent form: 200000000 as
"2e+8", the timestamp 1764600000000 as "1.7646e+12". An integer argument (PX,
PEXPIRE, LIMIT, a ZRANGE rank) then fails mid-script, and a stored timestamp
no longer reads as an int. The scripts format such numbers with ``int``
(_common.lua), and the Python readers accept the exponent form a Redis of
those versions already stored (``stored_int`` in _codec.py).

The Redis of these tests (7.0) prints whole numbers whole either way, so the
scripts' side is checked on the helper itself and on the format of what the
scripts store; the 7.2.0-7.2.4 behaviour cannot be reproduced here.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from importlib import resources

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    JobTemplate,
    Outcome,
    OutcomeKind,
    Schedule,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisScheduleStore, RedisStoreSettings
from jobqueue.redis._codec import stored_int
from jobqueue.redis._core import _SCRIPTS
from jobqueue.redis._prelude import prelude_for
from jobqueue.redis._schedules import _SCRIPTS as _SCHEDULE_SCRIPTS

pytestmark = pytest.mark.redis

LUA = resources.files("jobqueue.redis").joinpath("lua")
WHOLE = re.compile(rb"^[0-9]+$")


def whole(value: object) -> bool:
    """A stored value written as digits only."""
    return isinstance(value, bytes) and WHOLE.match(value) is not None


# Job hash fields that hold whole numbers (s status, e due, c created, u
# updated, a attempts, m max attempts, d lease deadline, n unconfirmed,
# f finished, z unconfirmed expiries, x cancel requested).
INTEGER_FIELDS = (b"s", b"e", b"c", b"u", b"a", b"m", b"d", b"n", b"f", b"z", b"x")


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    store = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    yield store
    await store.close()


def test_stored_int_reads_both_forms_exactly() -> None:
    assert stored_int(b"1764600000000") == 1764600000000
    assert stored_int(b"1.7646e+12") == 1764600000000
    assert stored_int(b"2e+8") == 200000000
    # Past 2**53 a float would round; Decimal does not.
    assert stored_int(b"9.007199254740993e+15") == 9007199254740993
    for bad in (b"1.5", b"x", b"inf", b"nan", b""):
        with pytest.raises(ValueError, match="not a whole number"):
            stored_int(bad)


async def test_a_job_hash_in_exponent_form_reads_back_whole(
    store: RedisJobStore, raw: aioredis.Redis, key_prefix: str
) -> None:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    job = await service.enqueue(EnqueueRequest(type="t", payload=b"p", max_attempts=3))
    (lease,) = await store.claim(["t"], limit=1, lease_ms=30_000)
    assert lease.job.id == job.id
    jk = f"{{{key_prefix}}}:j:{job.id}"
    # What Redis 7.2.0-7.2.4 stored for numbers that are multiples of 1e8.
    await raw.hset(jk, mapping={"e": "1.7646e+12", "c": "2e+8", "u": "1.76460001e+12"})
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.execution_time_ms == 1764600000000
    assert stored.created_at == 200000000
    assert stored.updated_at == 1764600010000
    assert (stored.attempts, stored.max_attempts) == (1, 3)
    # A hash that is wrong for another reason still fails as it did.
    await raw.hset(jk, "h", "{not json")
    with pytest.raises(json.JSONDecodeError):
        await store.get(job.id)


async def test_a_schedule_in_exponent_form_reads_back_whole(
    store: RedisJobStore, raw: aioredis.Redis, key_prefix: str
) -> None:
    schedules = RedisScheduleStore(store)
    made = await schedules.create(
        Schedule(
            id=UuidV7Generator().new_id(),
            name="n",
            template=JobTemplate(type="t"),
            interval_ms=60_000,
        )
    )
    sk = f"{{{key_prefix}}}:sc:{made.id}"
    assert whole(await raw.hget(sk, "ca"))
    assert whole(await raw.hget(sk, "an"))
    await raw.hset(sk, mapping={"ca": "1.7646e+12", "an": "2e+8"})
    read = await schedules.get(made.id)
    assert read is not None
    assert (read.created_at, read.anchor_ms) == (1764600000000, 200000000)


async def test_int_writes_whole_numbers_whole(raw: aioredis.Redis) -> None:
    """The helper itself, in a script assembled as _prelude.py assembles the shipped ones."""
    common = LUA.joinpath("_common.lua").read_text()
    body = (
        "local t = 1764600 * 1000000\n"  # computed, as a timestamp is
        "return {int(1764600000000), int(200000000), int(t), int(t + 0.0), int(-200000000),"
        " int(tonumber('100000000')), int(t / 1000 * 1000)}\n"
    )
    source = "#!lua\n" + prelude_for(common, body) + body
    assert "local function int(" in source
    assert "local function clock_ms(" not in source  # only what the body names
    reply = await raw.eval(source, 0)
    assert reply == [
        b"1764600000000",
        b"200000000",
        b"1764600000000",
        b"1764600000000",
        b"-200000000",
        b"100000000",
        b"1764600000000",
    ]


async def test_every_script_compiles(raw: aioredis.Redis) -> None:
    """Every variant: single Redis, Cluster, schedules, and the scripts loaded alone."""
    sources = [*_SCRIPTS[False].values(), *_SCRIPTS[True].values(), *_SCHEDULE_SCRIPTS.values()]
    for name in ("presence", "migrate_take", "migrate_done"):
        sources.append("#!lua\n" + LUA.joinpath(f"{name}.lua").read_text())
    for source in sources:
        await raw.script_load(source)


async def test_the_scripts_store_every_whole_number_whole(
    store: RedisJobStore, raw: aioredis.Redis, key_prefix: str
) -> None:
    """Every whole-number field of a job hash, through add, claim, renew, retry, settle, cancel.

    On the Redis of these tests (7.0.15) the scripts before ``int`` pass this
    too: Redis 7.0 prints a whole Lua number whole. It guards the format the
    scripts write; the exponent form of 7.2.0-7.2.4 cannot be reproduced here.
    """
    ns = f"{{{key_prefix}}}:"
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    seen: dict[bytes, int] = {}

    async def check(job_id: str) -> None:
        fields = await raw.hgetall(ns + "j:" + job_id)
        assert fields, job_id
        for field in INTEGER_FIELDS:
            if field in fields:
                assert whole(fields[field]), (field, fields[field])
                seen[field] = seen.get(field, 0) + 1

    plain = await service.enqueue("t", b"")  # add_one.lua
    options = await service.enqueue(  # add.lua, due now
        EnqueueRequest(type="t", payload=b"", max_attempts=5, idempotency_key="k")
    )
    await check(plain.id)
    await check(options.id)
    leases = await store.claim(["t"], limit=2, lease_ms=30_000)
    assert {lease.job.id for lease in leases} == {plain.id, options.id}
    first, second = sorted(leases, key=lambda lease: lease.job.id != plain.id)
    assert await store.renew([(first.job.id, first.token)], lease_ms=60_000)
    await check(first.job.id)
    await check(second.job.id)
    retry = Outcome(
        job_id=first.job.id, token=first.token, kind=OutcomeKind.RETRY, retry_delay_ms=100_000
    )
    done = Outcome(job_id=second.job.id, token=second.token, kind=OutcomeKind.COMPLETE)
    assert await store.settle([retry, done]) == [True, True]
    await check(first.job.id)  # requeue: e, u
    await check(second.job.id)  # finish: u, f
    await store.cancel(first.job.id)  # PENDING: finish_kept
    await check(first.job.id)
    await store.retry(first.job.id)  # retry_job
    await check(first.job.id)
    (again,) = await store.claim(["t"], limit=1, lease_ms=30_000)
    await store.cancel(again.job.id)  # RUNNING: flagged, u
    await check(again.job.id)
    assert {b"e", b"c", b"u", b"a", b"m", b"d", b"f", b"x"} <= set(seen)
