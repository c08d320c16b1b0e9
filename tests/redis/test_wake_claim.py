"""An idle claim's next claim rides behind its wait: one connection, no round trip between.

A worker with nothing to do blocks on its types' wake lists; when a token
comes, it used to learn of it and only then send its claim: a second round
trip on the path of every job's start latency. The claim is now written
right behind the BLPOP on the same connection, and Redis runs it the moment
the wait ends (_waits.py ``wait_then``). These tests read where the claim ran
from Redis's own ``CLIENT LIST`` (each client's last command), so they fail
on the old path, where the blocked connection's last command stays BLPOP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import (
    JobService,
    Lease,
    Outcome,
    OutcomeKind,
    SystemClock,
    UuidV7Generator,
)
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._blocking import BlockingConnections, Switched
from jobqueue.redis._multiplex import MultiplexedConnection
from tests._redis_clients import until
from tests._redis_server import RedisProcess

pytestmark = pytest.mark.redis

LEASE_MS = 60_000


@pytest.fixture(scope="module")
def own_redis() -> Iterator[str]:
    """A Redis of this module's own: CLIENT LIST and SCRIPT FLUSH see only these tests."""
    server = RedisProcess()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        server.close()


@pytest.fixture
async def raw(own_redis: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(own_redis)
    await client.ping()
    yield client
    await client.aclose()


@pytest.fixture
async def stores(
    own_redis: str, key_prefix: str
) -> AsyncIterator[tuple[RedisJobStore, RedisJobStore]]:
    """A worker's store and a producer's on this module's Redis, closed after the test."""
    worker, producer = make_store(own_redis, key_prefix), make_store(own_redis, key_prefix)
    try:
        yield worker, producer
    finally:
        await worker.close()
        await producer.close()


def make_store(url: str, prefix: str) -> RedisJobStore:
    return RedisJobStore(RedisStoreSettings(url=url, key_prefix=prefix), clock=SystemClock())


def service_for(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())


async def blocked_ids(raw: aioredis.Redis) -> set[int]:
    """The clients Redis holds in a BLPOP now."""
    return {int(c["id"]) for c in await raw.client_list() if c.get("cmd") == "blpop"}


async def last_commands(raw: aioredis.Redis, ids: set[int]) -> dict[int, str]:
    return {int(c["id"]): c["cmd"] for c in await raw.client_list() if int(c["id"]) in ids}


async def wait_blocked(raw: aioredis.Redis, count: int) -> set[int]:
    found: set[int] = set()

    async def blocked() -> bool:
        nonlocal found
        found = await blocked_ids(raw)
        return len(found) >= count

    assert await until(blocked), f"Redis never held {count} blocked clients"
    return found


def complete(lease: Lease) -> Outcome:
    return Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.COMPLETE)


async def finished_first(claim: asyncio.Task[list[Lease]], store: RedisJobStore) -> bool:
    """Whether the claim had its answer before its cancel landed (its leases are its
    caller's, who completes them here); False when it was cancelled."""
    try:
        leases = await claim
    except asyncio.CancelledError:
        return False
    await store.settle([complete(lease) for lease in leases])
    return True


def claim_task(store: RedisJobStore, wait_ms: int, limit: int = 1) -> asyncio.Task[list[Lease]]:
    return asyncio.create_task(store.claim(["t"], limit=limit, lease_ms=LEASE_MS, wait_ms=wait_ms))


async def test_the_claim_after_a_wake_runs_on_the_blocked_connection(
    stores: tuple[RedisJobStore, RedisJobStore], raw: aioredis.Redis
) -> None:
    worker, producer = stores
    claim = claim_task(worker, wait_ms=10_000)
    (blocked,) = await wait_blocked(raw, 1)
    job = await service_for(producer).enqueue("t")
    (lease,) = await asyncio.wait_for(claim, 5)
    assert lease.job.id == job.id
    assert lease.deadline_ms > job.created_at
    # The blocked connection's last command is the claim, not its BLPOP.
    assert await last_commands(raw, {blocked}) == {blocked: "evalsha"}


async def test_a_job_that_falls_due_during_the_wait_is_claimed_behind_its_timeout(
    stores: tuple[RedisJobStore, RedisJobStore], raw: aioredis.Redis
) -> None:
    worker, producer = stores
    now_s, _ = await raw.time()
    due_ms = int(now_s) * 1000 + 1_500  # Redis's clock decides: a due time ahead of it
    job = await service_for(producer).enqueue("t", execution_time_ms=due_ms)
    claim = claim_task(worker, wait_ms=10_000)
    (blocked,) = await wait_blocked(raw, 1)
    (lease,) = await asyncio.wait_for(claim, 8)
    assert lease.job.id == job.id
    (redis_s, redis_us) = await raw.time()
    assert int(redis_s) * 1000 + int(redis_us) // 1000 >= due_ms
    assert await last_commands(raw, {blocked}) == {blocked: "evalsha"}


async def test_a_second_claimer_of_the_same_types_waits_in_a_group_and_both_are_served(
    stores: tuple[RedisJobStore, RedisJobStore], raw: aioredis.Redis
) -> None:
    worker, producer = stores
    before = await blocked_ids(raw)
    claims = [claim_task(worker, wait_ms=10_000) for _ in range(3)]
    # One wait of its own (the first claimer), one shared by the others.
    blocked = await wait_blocked(raw, len(before) + 2)
    await asyncio.sleep(0.05)
    assert len(await blocked_ids(raw) - before) == 2, blocked
    jobs = [await service_for(producer).enqueue("t") for _ in range(3)]
    results = await asyncio.wait_for(asyncio.gather(*claims), 8)
    assert sorted(lease.job.id for result in results for lease in result) == sorted(
        job.id for job in jobs
    )
    assert all(len(result) == 1 for result in results)


async def test_a_claim_that_finds_no_script_behind_its_wait_claims_again_in_full(
    stores: tuple[RedisJobStore, RedisJobStore], raw: aioredis.Redis
) -> None:
    """After a Redis restart (here SCRIPT FLUSH) the claim behind the wait runs nothing."""
    worker, producer = stores
    claim = claim_task(worker, wait_ms=10_000)
    await wait_blocked(raw, 1)
    await raw.script_flush()
    job = await service_for(producer).enqueue("t")
    (lease,) = await asyncio.wait_for(claim, 5)
    assert lease.job.id == job.id
    stored = await worker.get(job.id)
    assert stored is not None
    assert stored.attempts == 1


async def test_a_claim_cancelled_while_it_waits_takes_nothing(
    stores: tuple[RedisJobStore, RedisJobStore], raw: aioredis.Redis
) -> None:
    worker, producer = stores
    claim = claim_task(worker, wait_ms=10_000)
    await wait_blocked(raw, 1)
    claim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await claim

    async def unblocked() -> bool:
        return not await blocked_ids(raw)

    assert await until(unblocked)
    job = await service_for(producer).enqueue("t")
    (lease,) = await worker.claim(["t"], limit=1, lease_ms=LEASE_MS)
    assert lease.job.id == job.id
    assert lease.job.attempts == 1  # nobody had leased it before


async def unblocks(raw: aioredis.Redis) -> int:
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_client|unblock", {}).get("calls", 0))


async def test_a_wait_that_ends_at_a_due_time_is_ended_by_this_side_not_redis_timer(
    stores: tuple[RedisJobStore, RedisJobStore], raw: aioredis.Redis
) -> None:
    """Redis checks a BLPOP's own timeout only every 100 ms (hz 10): a job due now would
    be claimed up to 100 ms late. The wait is ended by CLIENT UNBLOCK when it is due."""
    worker, producer = stores
    now_s, _ = await raw.time()
    due_ms = int(now_s) * 1000 + 1_000
    job = await service_for(producer).enqueue("t", execution_time_ms=due_ms)
    before = await unblocks(raw)
    (lease,) = await asyncio.wait_for(
        worker.claim(["t"], limit=1, lease_ms=LEASE_MS, wait_ms=10_000), 8
    )
    assert lease.job.id == job.id
    assert await unblocks(raw) > before


async def test_a_claim_cancelled_just_after_its_wake_hands_its_lease_back(
    own_redis: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    """Redis may run the claim behind the wait before the caller's cancel lands: whatever it
    leased is released (attempt given back), never left for its lease to expire."""
    worker, producer = make_store(own_redis, key_prefix), make_store(own_redis, key_prefix)
    other = make_store(own_redis, key_prefix)
    try:
        for _ in range(5):
            claim = claim_task(worker, wait_ms=10_000)
            await wait_blocked(raw, 1)
            job = await service_for(producer).enqueue("t")
            claim.cancel()  # the token may have reached the wait already: the usual case here
            if await finished_first(claim, other):
                continue
            leases: list[Lease] = []

            async def claimable() -> bool:
                nonlocal leases
                leases = await other.claim(["t"], limit=1, lease_ms=LEASE_MS)
                return bool(leases)

            assert await until(claimable, within_s=5.0), "the job stayed leased by nobody"
            (lease,) = leases
            assert lease.job.id == job.id
            assert lease.job.attempts == 1  # a handed-back attempt is not counted
            await other.settle([complete(lease)])
    finally:
        await worker.close()
        await producer.close()
        await other.close()


async def test_an_operator_unblocking_the_wait_with_an_error_does_not_fail_the_claim(
    stores: tuple[RedisJobStore, RedisJobStore], raw: aioredis.Redis
) -> None:
    """CLIENT UNBLOCK id ERROR answers the BLPOP with an error; the claim behind it still ran."""
    worker, producer = stores
    claim = claim_task(worker, wait_ms=10_000)
    (blocked,) = await wait_blocked(raw, 1)
    assert await raw.client_unblock(blocked, error=True) == 1
    await asyncio.sleep(0.05)
    assert not claim.done()  # it claimed nothing, and waits again
    job = await service_for(producer).enqueue("t")
    (lease,) = await asyncio.wait_for(claim, 5)
    assert lease.job.id == job.id


async def test_a_new_primary_drops_a_wait_before_the_command_behind_it_runs(
    own_redis: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    """Left to its timeout, the command behind the wait would run on the old primary."""
    blocking = BlockingConnections(
        lambda: MultiplexedConnection(own_redis, connect_timeout_s=2.0, timeout_s=30.0)
    )
    counter = f"{key_prefix}:ran"

    async def unblock(client_id: int) -> None:
        await raw.client_unblock(client_id)

    try:
        wait = asyncio.create_task(
            blocking.blpop_then(
                [f"{key_prefix}:w"],
                10.0,
                ("INCR", counter),
                unblock=unblock,
                orphaned=lambda _: None,
                grace_s=2.0,
            )
        )
        await wait_blocked(raw, 1)
        blocking.retire_idle()  # what the topology calls on a switch
        with pytest.raises(Switched):
            await asyncio.wait_for(wait, 5)
        await asyncio.sleep(0.05)
        assert await raw.get(counter) is None
    finally:
        await blocking.aclose()


async def test_where_an_acl_refuses_client_commands_waits_still_end_and_then_wait_in_groups(
    own_redis: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    """CLIENT ID and UNBLOCK refused: the first wait ends by Redis's own timeout, the job is
    claimed all the same, and later waits take the group path (their claim after the wake)."""
    user = f"u{key_prefix[-8:]}"
    await raw.acl_setuser(
        user,
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-client"],
    )
    host_port = own_redis.split("//", 1)[1]
    url = f"redis://{user}:pw@{host_port}"
    worker, producer = make_store(url, key_prefix), make_store(own_redis, key_prefix)
    try:
        now_s, _ = await raw.time()
        job = await service_for(producer).enqueue("t", execution_time_ms=int(now_s) * 1000 + 1_000)
        (lease,) = await asyncio.wait_for(
            worker.claim(["t"], limit=1, lease_ms=LEASE_MS, wait_ms=10_000), 8
        )
        assert lease.job.id == job.id
        claim = claim_task(worker, wait_ms=10_000)
        (blocked,) = await wait_blocked(raw, 1)
        second = await service_for(producer).enqueue("t")
        (lease,) = await asyncio.wait_for(claim, 5)
        assert lease.job.id == second.id
        assert await last_commands(raw, {blocked}) == {blocked: "blpop"}
    finally:
        await worker.close()
        await producer.close()
        await raw.acl_deluser(user)


async def test_a_new_primary_announced_while_the_wait_connects_drops_it_as_switched(
    own_redis: str,
) -> None:
    """Dropping a connection that is still connecting cancels its connect: the caller gets
    Switched (and claims again), not a cancellation nobody asked for, which would end a
    worker's claim loop."""
    host, port = own_redis.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    looked_up = asyncio.Event()

    async def slow_lookup() -> tuple[str, int]:  # a Sentinel lookup under way
        looked_up.set()
        await asyncio.sleep(0.5)
        return host, int(port)

    blocking = BlockingConnections(
        lambda: MultiplexedConnection(
            own_redis, connect_timeout_s=2.0, timeout_s=30.0, resolve=slow_lookup
        )
    )

    async def unblock(client_id: int) -> None:
        raise AssertionError("nothing to unblock")

    try:
        wait = asyncio.create_task(
            blocking.blpop_then(
                ["w"], 5.0, ("PING",), unblock=unblock, orphaned=lambda _: None, grace_s=2.0
            )
        )
        await looked_up.wait()
        blocking.retire_idle()
        with pytest.raises(Switched):
            await asyncio.wait_for(wait, 5)
        assert not wait.cancelled()
    finally:
        await blocking.aclose()


async def test_closing_the_store_just_after_cancelling_a_woken_claim_hands_the_job_back(
    own_redis: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    producer, other = make_store(own_redis, key_prefix), make_store(own_redis, key_prefix)
    try:
        for _ in range(5):
            worker = make_store(own_redis, key_prefix)
            before = await blocked_ids(raw)
            claim = claim_task(worker, wait_ms=10_000)
            await wait_blocked(raw, len(before) + 1)
            job = await service_for(producer).enqueue("t")
            claim.cancel()
            await worker.close()  # before the cancelled claim has run again
            if await finished_first(claim, other):
                continue
            (lease,) = await other.claim(["t"], limit=1, lease_ms=LEASE_MS)
            assert lease.job.id == job.id
            assert lease.job.attempts == 1
            await other.settle([complete(lease)])
    finally:
        await producer.close()
        await other.close()
