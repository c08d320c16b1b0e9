"""The store's shared, pipelined connection: replies reach the right callers, failures fail fast."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest
import redis.asyncio as aioredis
from redis import exceptions as rexc

from jobqueue.redis._multiplex import MultiplexedConnection
from tests._redis_server import free_port

pytestmark = pytest.mark.redis


def connect(url: str, *, timeout_s: float = 5.0) -> MultiplexedConnection:
    return MultiplexedConnection(url, connect_timeout_s=2.0, timeout_s=timeout_s)


async def test_concurrent_callers_each_get_their_own_reply(redis_url: str) -> None:
    connection = connect(redis_url)
    try:
        replies = await asyncio.gather(
            *(connection.execute("ECHO", f"call-{i}") for i in range(2_000))
        )
        assert replies == [f"call-{i}".encode() for i in range(2_000)]
    finally:
        await connection.close()


async def test_a_cancelled_caller_does_not_shift_the_replies_of_the_others(
    redis_url: str, key_prefix: str
) -> None:
    connection = connect(redis_url)
    key = f"{{{key_prefix}}}:block"
    try:
        # The BLPOP holds every later reply back, so the cancelled caller's
        # reply arrives after it gave up and must be dropped, not handed on.
        blocked = asyncio.create_task(connection.execute("BLPOP", key, 0))
        doomed = asyncio.create_task(connection.execute("ECHO", "doomed"))
        survivors = [asyncio.create_task(connection.execute("ECHO", f"s{i}")) for i in range(50)]
        await asyncio.sleep(0.05)
        doomed.cancel()
        pusher = connect(redis_url)
        await pusher.execute("RPUSH", key, "go")
        await pusher.close()
        assert await blocked == [key.encode(), b"go"]
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert await asyncio.gather(*survivors) == [f"s{i}".encode() for i in range(50)]
        assert await connection.execute("ECHO", "after") == b"after"
    finally:
        await connection.close()


async def test_a_killed_connection_fails_the_calls_in_flight_and_the_next_call_reconnects(
    redis_url: str, key_prefix: str, raw: aioredis.Redis
) -> None:
    connection = connect(redis_url)
    name = f"{key_prefix}-victim"
    key = f"{{{key_prefix}}}:never"
    try:
        await connection.execute("CLIENT", "SETNAME", name)
        in_flight = asyncio.create_task(connection.execute("BLPOP", key, 0))
        await asyncio.sleep(0.05)
        await raw.client_kill_filter(_id=await _id_of(raw, name))
        with pytest.raises(rexc.ConnectionError):
            await in_flight
        assert await connection.execute("PING") == b"PONG"
        assert await connection.execute("CLIENT", "GETNAME") is None  # a new connection
    finally:
        await connection.close()


async def test_a_call_that_times_out_closes_the_connection_and_the_next_one_recovers(
    redis_url: str, key_prefix: str
) -> None:
    connection = connect(redis_url, timeout_s=0.2)
    key = f"{{{key_prefix}}}:never"
    try:
        blocked = asyncio.create_task(connection.execute("BLPOP", key, 5))
        queued = asyncio.create_task(connection.execute("PING"))
        with pytest.raises(rexc.TimeoutError):
            await blocked
        # Behind an unanswered call, the queued one can never be answered.
        with pytest.raises((rexc.TimeoutError, rexc.ConnectionError)):
            await queued
        assert await connection.execute("PING") == b"PONG"
    finally:
        await connection.close()


async def test_error_replies_are_raised_and_leave_the_connection_usable(redis_url: str) -> None:
    connection = connect(redis_url)
    try:
        with pytest.raises(rexc.ResponseError, match="unknown command"):
            await connection.execute("NO-SUCH-COMMAND")
        assert await connection.execute("PING") == b"PONG"
    finally:
        await connection.close()


async def test_the_url_selects_the_database(redis_url: str, key_prefix: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    connection = connect(f"{base}/5")
    check = aioredis.Redis.from_url(f"{base}/5")
    key = f"{{{key_prefix}}}:db"
    try:
        await connection.execute("SET", key, "here")
        assert await check.get(key) == b"here"
        await check.delete(key)
    finally:
        await connection.close()
        await check.aclose()


async def test_an_unreachable_server_is_a_connection_error() -> None:
    connection = connect(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(rexc.ConnectionError):
        await connection.execute("PING")
    await connection.close()


def test_a_connection_follows_its_user_to_a_new_event_loop(redis_url: str) -> None:
    connection = connect(redis_url)

    async def ping(*, then_close: bool) -> bytes:
        reply = bytes(await connection.execute("PING"))
        if then_close:
            await connection.close()
        return reply

    # asyncio.run closes its loop without closing the sockets on it: the one
    # the first loop left behind warns when the second replaces it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        assert asyncio.run(ping(then_close=False)) == b"PONG"
        assert asyncio.run(ping(then_close=True)) == b"PONG"
        gc.collect()


async def _id_of(raw: aioredis.Redis, name: str) -> str:
    for client in await raw.client_list():
        if client.get("name") == name:
            return str(client["id"])
    raise AssertionError(f"no client named {name}")
