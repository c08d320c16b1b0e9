"""A node that is no primary now: every such reply is StoreUnavailable, and the connection
that heard it is dropped, so the next call asks afresh (issue 12, item 1).

Before this, the multiplexed connection built a plain ResponseError from every
error reply and the store matched message prefixes: ``READONLY`` reached callers
as an unknown error (gRPC INTERNAL, which the SDKs do not retry) on a socket that
stayed open to the demoted node.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import hiredis
import pytest
import redis

from jobqueue.domain import JobService, StoreUnavailable, SystemClock, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.redis._errors import is_failover, parse_error_reply
from tests._redis_server import RedisProcess

pytestmark = pytest.mark.redis

FAILOVER_REPLIES = {
    "READONLY": "You can't write against a read only replica.",
    "LOADING": "Redis is loading the dataset in memory",
    "MASTERDOWN": "Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "TRYAGAIN": "Multiple keys request during rehashing of slot",
    "CLUSTERDOWN": "The cluster is down",
}
CONNECTIONS = ["multiplexed", "redis-py"]


class RefusingNode:
    """A RESP server on loopback that answers every data command with one error reply.

    A fake at the network edge (a real socket, real parsers on the store's side):
    it plays a node in the middle of a failover, which a real Redis shows only
    for moments. It counts the connections made to it.
    """

    def __init__(self, code: str) -> None:
        self.line = f"-{code} {FAILOVER_REPLIES[code]}\r\n".encode()
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        parser = hiredis.Reader()
        try:
            while data := await reader.read(65536):
                parser.feed(data)
                while (command := parser.gets()) is not False:
                    name = bytes(command[0]).upper()
                    # The handshake redis-py sends on connect succeeds; the rest is refused.
                    writer.write(b"+OK\r\n" if name in (b"CLIENT", b"SELECT") else self.line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.mark.parametrize("code", list(FAILOVER_REPLIES))
def test_failover_replies_are_typed_by_redis_pys_parser(code: str) -> None:
    error = parse_error_reply(f"{code} {FAILOVER_REPLIES[code]}")
    assert is_failover(error)
    assert not is_failover(parse_error_reply("ERR unknown command 'X'"))
    assert not is_failover(parse_error_reply("OOM command not allowed"))


@pytest.mark.parametrize("connection", CONNECTIONS)
@pytest.mark.parametrize("code", list(FAILOVER_REPLIES))
async def test_a_failover_reply_is_unavailable_and_the_next_call_reconnects(
    code: str, connection: str
) -> None:
    node = RefusingNode(code)
    await node.start()
    store = RedisJobStore(
        RedisStoreSettings(
            url=f"redis://127.0.0.1:{node.port}/0",
            key_prefix="failover",
            connection=connection,  # type: ignore[arg-type]
        )
    )
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    try:
        with pytest.raises(StoreUnavailable, match=code):
            await service.enqueue("t", b"x")
        before = node.connections
        with pytest.raises(StoreUnavailable, match=code):
            await store.cancel("some-id")
        assert node.connections > before, "the call went to the connection that heard " + code
    finally:
        await store.close()
        await node.close()


@pytest.fixture
def pair() -> Iterator[tuple[RedisProcess, RedisProcess]]:
    first, second = RedisProcess(), RedisProcess()
    first.start()
    second.start()
    yield first, second
    first.close()
    second.close()


@pytest.fixture
async def admin(pair: tuple[RedisProcess, RedisProcess]) -> AsyncIterator[Any]:
    client = redis.asyncio.Redis.from_url(pair[0].url)
    yield client
    await client.aclose()


def other_clients(clients: list[dict[str, Any]], own_id: int) -> set[int]:
    return {int(c["id"]) for c in clients if int(c["id"]) != own_id}


@pytest.mark.parametrize("connection", CONNECTIONS)
async def test_readonly_after_a_demotion_then_the_next_call_succeeds(
    pair: tuple[RedisProcess, RedisProcess], admin: Any, connection: str
) -> None:
    primary, other = pair
    store = RedisJobStore(
        RedisStoreSettings(
            url=primary.url,
            key_prefix="demoted-" + secrets.token_hex(3),
            connection=connection,  # type: ignore[arg-type]
        )
    )
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    try:
        await service.enqueue("t", b"before")
        own = int(await admin.client_id())
        ours_before = other_clients(await admin.client_list(), own)
        await admin.execute_command("REPLICAOF", "127.0.0.1", str(other.port))
        with pytest.raises(StoreUnavailable, match="READONLY"):
            await service.enqueue("t", b"during")
        # The connection that heard READONLY is gone: none of the store's
        # connections from before the demotion remains open on this node.
        for _ in range(100):  # bounded: closing is asynchronous
            if not ours_before & other_clients(await admin.client_list(), own):
                break
            await asyncio.sleep(0.02)
        assert not ours_before & other_clients(await admin.client_list(), own)
        await admin.execute_command("REPLICAOF", "NO", "ONE")
        job = await service.enqueue("t", b"after")
        assert (await store.get(job.id)) is not None
    finally:
        await store.close()


async def test_a_new_primary_makes_the_subscriber_reconnect_and_resubscribe(
    redis_url: str, key_prefix: str
) -> None:
    """What the store does on Sentinel's ``+switch-master``: publishes of the new
    primary never reach a pub/sub connection left on the old one."""
    from jobqueue.redis._pubsub import Subscriber

    admin = redis.asyncio.Redis.from_url(redis_url)
    pool = redis.asyncio.ConnectionPool.from_url(redis_url, protocol=2)
    subscriber = Subscriber(pool.make_connection)
    channel = "{" + key_prefix + "}:switch"

    async def pubsub_ids() -> set[int]:
        return {int(c["id"]) for c in await admin.client_list(_type="pubsub")}

    try:
        listener = await subscriber.listen(channel)
        before = await pubsub_ids()
        assert len(before) == 1
        subscriber.reconnect()
        for _ in range(250):  # bounded: 5 s
            now = await pubsub_ids()
            if now and not now & before and (await admin.pubsub_numsub(channel))[0][1] == 1:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the subscriber did not come back on a new connection")
        await admin.publish(channel, "after")
        for _ in range(250):
            if b"after" in listener.take():
                break
            await listener.wait(0.02)
        else:
            pytest.fail("the message published after the reconnect was not heard")
    finally:
        await subscriber.close()
        await pool.aclose()
        await admin.aclose()
