"""Blocking waits on connections of their own: tokens reach waiters, a cut-short wait pops none."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis import exceptions as rexc

from jobqueue.redis._blocking import BlockingConnections
from jobqueue.redis._multiplex import MultiplexedConnection

pytestmark = pytest.mark.redis


def pool(url: str) -> BlockingConnections:
    return BlockingConnections(
        lambda: MultiplexedConnection(url, connect_timeout_s=2.0, timeout_s=30.0)
    )


async def blocked_clients(raw: aioredis.Redis) -> int:
    clients = await raw.client_list()
    return sum(1 for client in clients if client.get("cmd") == "blpop")


async def until_blocked(raw: aioredis.Redis, count: int) -> None:
    """Until Redis holds ``count`` clients in BLPOP (a bounded poll, no timing assumed)."""
    for _ in range(500):
        if await blocked_clients(raw) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"Redis never held {count} blocked clients")


async def test_a_token_reaches_its_waiter_and_the_connection_is_reused(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    waits = pool(redis_url)
    key = f"{{{key_prefix}}}:w:a"
    try:
        for round_ in range(3):
            waiting = asyncio.create_task(waits.blpop([key], timeout=5))
            await until_blocked(raw, 1)
            await raw.rpush(key, f"token-{round_}")
            assert await waiting == [key.encode(), f"token-{round_}".encode()]
        # One connection served the three waits, one after another.
        clients = await raw.client_list()
        assert sum(1 for client in clients if client.get("cmd") != "client|list") == 1
        assert await waits.blpop([key], timeout=0.01) is None  # timed out: nothing to pop
    finally:
        await waits.aclose()


async def test_a_wait_cut_short_leaves_the_next_token_in_its_list(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    waits = pool(redis_url)
    key = f"{{{key_prefix}}}:w:b"
    try:
        waiting = asyncio.create_task(waits.blpop([key], timeout=5))
        await until_blocked(raw, 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # Its connection is closed, so Redis no longer holds a BLPOP that
        # would pop a token for nobody.
        await until_blocked(raw, 0)
        await raw.rpush(key, "kept")
        assert await raw.lrange(key, 0, -1) == [b"kept"]
        # The next wait makes a new connection and gets the token.
        assert await waits.blpop([key], timeout=5) == [key.encode(), b"kept"]
    finally:
        await waits.aclose()


async def test_closing_fails_the_waits_in_flight(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    waits = pool(redis_url)
    key = f"{{{key_prefix}}}:w:c"
    waiting = [asyncio.create_task(waits.blpop([key], timeout=5)) for _ in range(3)]
    await until_blocked(raw, 3)
    await waits.aclose()
    for wait in waiting:
        with pytest.raises(rexc.ConnectionError):
            await wait
    await until_blocked(raw, 0)
