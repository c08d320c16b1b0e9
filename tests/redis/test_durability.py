"""Durability on demand (issue 12, item 3): with ``min_replicas``, add, settle and cancel
wait for replicas on connections of their own, and the start-up checks of Redis's config.

``WAIT`` blocks the connection that sends it. These tests stop the replica
(SIGSTOP) so a ``WAIT`` lasts its whole timeout, and show that reads and
claims made meanwhile are answered while the durable write still waits: the
``WAIT`` holds only its own connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from jobqueue.domain import (
    BulkAction,
    JobFilter,
    JobService,
    JobStatus,
    Outcome,
    OutcomeKind,
    StoreUnavailable,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings, redis_warnings
from tests._redis_server import RedisProcess

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[RedisProcess, RedisProcess]]:
    primary = RedisProcess()
    primary.start()
    replica = RedisProcess(extra_args=("--replicaof", "127.0.0.1", str(primary.port)))
    replica.start()
    client = redis.Redis.from_url(primary.url)
    try:
        for _ in range(200):  # bounded: the replica's first sync
            link: Any = client.info("replication").get("slave0", {})
            if isinstance(link, dict) and link.get("state") == "online":
                break
            time.sleep(0.05)
        yield primary, replica
    finally:
        client.close()
        replica.close()
        primary.close()


@pytest.fixture
async def durable_store(
    replicated: tuple[RedisProcess, RedisProcess],
) -> AsyncIterator[RedisJobStore]:
    primary, _ = replicated
    store = RedisJobStore(
        RedisStoreSettings(
            url=primary.url,
            key_prefix="durable-" + secrets.token_hex(3),
            min_replicas=1,
            replica_timeout_ms=2_000,
        )
    )
    yield store
    await store.close()


def wait_calls(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        stats: Any = client.info("commandstats")
        return int(stats.get("cmdstat_wait", {}).get("calls", 0))
    finally:
        client.close()


async def test_add_settle_and_cancel_wait_for_a_replica_claim_and_renew_do_not(
    replicated: tuple[RedisProcess, RedisProcess], durable_store: RedisJobStore
) -> None:
    primary, replica = replicated
    service = JobService(durable_store, clock=SystemClock(), ids=UuidV7Generator())
    # Redis learns each script first (a NOSCRIPT reply's EVAL waits again).
    warm = await service.enqueue("warm", b"")
    [lease] = await durable_store.claim(["warm"], limit=1, lease_ms=10_000)
    await durable_store.settle(
        [Outcome(job_id=warm.id, token=lease.token, kind=OutcomeKind.COMPLETE)]
    )
    await durable_store.cancel((await service.enqueue("warm", b"")).id)
    before = wait_calls(primary.url)
    job = await service.enqueue("t", b"x")
    other = await service.enqueue("t", b"y")
    assert wait_calls(primary.url) == before + 2
    # Acknowledged means on the replica already.
    on_replica = redis.Redis.from_url(replica.url)
    try:
        ns = durable_store.settings.namespace
        assert on_replica.exists(f"{ns}j:{job.id}") == 1
    finally:
        on_replica.close()
    leases = await durable_store.claim(["t"], limit=2, lease_ms=10_000)
    await durable_store.renew([(lease.job.id, lease.token) for lease in leases], lease_ms=10_000)
    assert wait_calls(primary.url) == before + 2
    by_id = {lease.job.id: lease for lease in leases}
    settled = await durable_store.settle(
        [Outcome(job_id=job.id, token=by_id[job.id].token, kind=OutcomeKind.COMPLETE)]
    )
    assert settled == [True]
    await durable_store.cancel(other.id)
    assert wait_calls(primary.url) == before + 4


async def test_an_operators_retry_delete_and_bulk_step_wait_for_a_replica(
    replicated: tuple[RedisProcess, RedisProcess], durable_store: RedisJobStore
) -> None:
    primary, replica = replicated
    service = JobService(durable_store, clock=SystemClock(), ids=UuidV7Generator())
    cancelled = [
        await durable_store.cancel((await service.enqueue("ops", b"")).id) for _ in range(4)
    ]
    # Redis learns each script first (a NOSCRIPT reply's EVAL waits again).
    await durable_store.retry(cancelled[0].id)
    await durable_store.cancel(cancelled[0].id)
    await durable_store.delete(cancelled[0].id)
    await durable_store.cancel((await service.enqueue("warm.ops", b"")).id)
    await durable_store.bulk(BulkAction.DELETE, JobFilter(type="warm.ops"), limit=10, cursor="")
    before = wait_calls(primary.url)
    await durable_store.retry(cancelled[1].id)
    await durable_store.delete(cancelled[2].id)
    result = await durable_store.bulk(
        BulkAction.DELETE, JobFilter(type="ops", status=JobStatus.CANCELLED), limit=10, cursor=""
    )
    assert (result.changed, result.next_cursor) == (1, "")
    assert wait_calls(primary.url) == before + 3
    # Acknowledged means on the replica already: the deleted jobs are gone there.
    on_replica = redis.Redis.from_url(replica.url)
    try:
        ns = durable_store.settings.namespace
        assert on_replica.exists(f"{ns}j:{cancelled[2].id}", f"{ns}j:{cancelled[3].id}") == 0
        assert on_replica.hget(f"{ns}j:{cancelled[1].id}", "s") == b"1"
    finally:
        on_replica.close()


async def test_a_write_the_replicas_do_not_acknowledge_is_unavailable_and_stalls_no_one(
    replicated: tuple[RedisProcess, RedisProcess], durable_store: RedisJobStore
) -> None:
    _, replica = replicated
    assert replica.process is not None
    service = JobService(durable_store, clock=SystemClock(), ids=UuidV7Generator())
    known = await service.enqueue("t", b"known")
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        durable = asyncio.create_task(service.enqueue("t", b"unacknowledged"))
        await asyncio.sleep(0.1)  # its WAIT is in flight
        # Reads and claims on the store's other connection are answered meanwhile.
        for _ in range(20):
            assert (await durable_store.get(known.id)) is not None
        await durable_store.claim(["none"], limit=1, lease_ms=1_000)
        assert not durable.done(), "the reads waited behind the WAIT"
        with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
            await durable
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)
    # The replica back, the next durable write is acknowledged again.
    for _ in range(50):  # bounded: the replica catches up within a few tries
        try:
            await service.enqueue("t", b"after")
            break
        except StoreUnavailable:
            await asyncio.sleep(0.1)
    else:
        pytest.fail("no durable write succeeded after the replica resumed")


@pytest.fixture
def risky_redis() -> Iterator[RedisProcess]:
    server = RedisProcess(extra_args=("--maxmemory-policy", "allkeys-lru"))
    server.start()
    yield server
    server.close()


async def test_the_start_up_check_names_appendonly_off_and_an_evicting_policy(
    risky_redis: RedisProcess,
) -> None:
    warnings = await redis_warnings(RedisStoreSettings(url=risky_redis.url))
    assert len(warnings) == 2
    assert "appendonly off" in warnings[0]
    assert "allkeys-lru" in warnings[1]


async def test_the_start_up_check_is_quiet_for_a_safe_config_and_tolerates_no_config() -> None:
    safe = RedisProcess(appendonly=True)
    locked = RedisProcess(appendonly=True, extra_args=("--rename-command", "CONFIG", ""))
    safe.start()
    locked.start()
    try:
        assert await redis_warnings(RedisStoreSettings(url=safe.url)) == []
        [warning] = await redis_warnings(RedisStoreSettings(url=locked.url))
        assert "could not read Redis's maxmemory-policy" in warning
    finally:
        safe.close()
        locked.close()


async def test_the_server_passes_min_replicas_and_warns_at_start(
    risky_redis: RedisProcess, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from jobqueue_server import App, Container, ServerSettings

    monkeypatch.setenv("JOBQUEUE_REDIS_MIN_REPLICAS", "2")
    monkeypatch.setenv("JOBQUEUE_REDIS_REPLICA_TIMEOUT_MS", "250")
    container = Container()
    container.settings.override(ServerSettings(host="127.0.0.1", port=0, redis_url=risky_redis.url))
    store = container.store()
    assert isinstance(store, RedisJobStore)
    assert (store.settings.min_replicas, store.settings.replica_timeout_ms) == (2, 250)
    app = App(container)
    caplog.set_level(logging.WARNING, logger="jobqueue_server")
    await app.start()
    try:
        for _ in range(100):  # bounded: the check runs in the background
            if "allkeys-lru" in caplog.text:
                break
            await asyncio.sleep(0.02)
        assert "appendonly off" in caplog.text
        assert "allkeys-lru" in caplog.text
    finally:
        await app.stop()
