"""Keys stored under their old names (k:<key>, u:<key>) are found again after upgrade_key_names.

The old layout is made the way a Redis written before 4371e20 holds it: jobs
stored by today's code, their keys then renamed to the old names (RENAME keeps
a key's expiry). Before the upgrade today's scripts do not see them; after it
they do, with each key's remaining expiry, and a second run moves nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from click.testing import CliRunner

from jobqueue.domain import (
    EnqueueRequest,
    Job,
    JobService,
    Outcome,
    OutcomeKind,
    SystemClock,
    UniqueScope,
    UuidV7Generator,
)
from jobqueue.redis import KeyUpgradeReport, RedisJobStore, RedisStoreSettings, upgrade_key_names
from jobqueue_server.__main__ import cli


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[RedisJobStore]:
    store = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=key_prefix))
    yield store
    await store.close()


def service(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


async def to_old_name(raw: aioredis.Redis, ns: str, kind: str, job_type: str, key: str) -> None:
    await raw.rename(f"{ns}{kind}:{job_type}/{key}", f"{ns}{kind}:{key}")


async def old_layout(store: RedisJobStore, raw: aioredis.Redis, ns: str) -> dict[str, Job]:
    """Five jobs whose keys sit under their old names: pending, unique, finished, debounced."""
    jobs = service(store)
    made = {
        "pending": await jobs.enqueue(EnqueueRequest(type="email", idempotency_key="order-1")),
        "slash": await jobs.enqueue(EnqueueRequest(type="email", idempotency_key="x/y")),
        "unique": await jobs.enqueue(EnqueueRequest(type="sync", unique_key="customer:7")),
        "debounced": await jobs.enqueue(
            EnqueueRequest(
                type="deb",
                unique_key="d",
                unique_scope=UniqueScope.DEBOUNCE,
                unique_window_ms=60_000,
            )
        ),
        "finished": await jobs.enqueue(EnqueueRequest(type="report", idempotency_key="done-1")),
    }
    [lease] = await store.claim(["report"], limit=1, lease_ms=60_000)
    await store.settle([Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)])
    await to_old_name(raw, ns, "k", "email", "order-1")
    await to_old_name(raw, ns, "k", "email", "x/y")
    await to_old_name(raw, ns, "u", "sync", "customer:7")
    await to_old_name(raw, ns, "u", "deb", "d")
    await to_old_name(raw, ns, "k", "report", "done-1")
    return made


async def test_old_names_move_to_per_type_names_with_their_expiry(
    store: RedisJobStore, raw: aioredis.Redis, key_prefix: str
) -> None:
    ns = f"{{{key_prefix}}}:"
    made = await old_layout(store, raw, ns)
    assert await raw.exists(f"{ns}k:email/order-1") == 0  # unseen by today's scripts

    dry = await upgrade_key_names(store, dry_run=True)
    assert dry == KeyUpgradeReport(jobs=5, idempotency_keys=3, unique_keys=2, dry_run=True)
    assert await raw.exists(f"{ns}k:order-1", f"{ns}u:d") == 2  # a dry run changes nothing

    report = await upgrade_key_names(store)
    assert (report.idempotency_keys, report.unique_keys) == (3, 2)
    for old in ("k:order-1", "k:x/y", "k:done-1", "u:customer:7", "u:d"):
        assert await raw.exists(ns + old) == 0
    assert await raw.get(f"{ns}k:email/x/y") == made["slash"].id.encode()
    assert await raw.pttl(f"{ns}k:email/order-1") == -1  # a pending job's key never expires
    assert await raw.pttl(f"{ns}k:report/done-1") > 0  # a finished one's, with its retention
    assert 0 < await raw.pttl(f"{ns}u:deb/d") <= 60_000  # a debounce, with its window

    jobs = service(store)
    again = await jobs.enqueue(EnqueueRequest(type="email", idempotency_key="order-1"))
    assert again.id == made["pending"].id
    holder = await jobs.enqueue(EnqueueRequest(type="sync", unique_key="customer:7"))
    assert holder.id == made["unique"].id
    finished = await jobs.enqueue(EnqueueRequest(type="report", idempotency_key="done-1"))
    assert finished.id == made["finished"].id

    assert await upgrade_key_names(store) == KeyUpgradeReport(
        jobs=5, idempotency_keys=0, unique_keys=0
    )


async def test_a_key_taken_again_under_its_new_name_keeps_it(
    store: RedisJobStore, raw: aioredis.Redis, key_prefix: str
) -> None:
    # Enqueued once by the old code, then again by the new code that did not see it.
    ns = f"{{{key_prefix}}}:"
    jobs = service(store)
    first = await jobs.enqueue(EnqueueRequest(type="email", idempotency_key="dup"))
    await to_old_name(raw, ns, "k", "email", "dup")
    second = await jobs.enqueue(EnqueueRequest(type="email", idempotency_key="dup"))
    assert second.id != first.id
    await upgrade_key_names(store)
    assert await raw.get(f"{ns}k:email/dup") == second.id.encode()
    assert await raw.exists(f"{ns}k:dup") == 0


def test_the_server_command_upgrades_and_says_what_it_moved(
    redis_url: str, key_prefix: str
) -> None:
    args = ["upgrade-keys", "--redis-url", redis_url, "--key-prefix", key_prefix]
    dry = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would move 0 idempotency key(s) and 0 unique key(s) of 0 job(s)" in dry.output
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert done.output.startswith("moved 0 idempotency key(s)")
