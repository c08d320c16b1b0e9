"""Concurrent primary discoveries keep every sentinel (issue 12: the unclosed sentinel connection).

When a primary is killed, every connection of a store reconnects at once and
each asks the sentinels for the primary. The first sentinel may still call the
old one down while the second names the new one. redis-py's ``discover_master``
then moves the second to the front reading ``sentinels[0]`` after its await, so
two discoveries leave it listed twice and the first sentinel gone: never asked
again, never closed, its connections left open (about 1 run in 4 of the
killed-primary test ended so). The sentinels here are fakes of redis-py's
sentinel client (``sentinel_masters`` and ``aclose``), so the interleaving is
exact: both discoveries wait on the second sentinel's answer together.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
import redis.asyncio.sentinel
from redis.asyncio.sentinel import Sentinel

from jobqueue.redis._topology import KeptSentinel

SERVICE = "jq"
NEW_PRIMARY = ("127.0.0.1", 7002)


class FakeSentinelNode:
    """A sentinel's client: its view of the service, given when ``answer`` is set."""

    def __init__(self, *, host: str, port: int, **_: Any) -> None:
        self.port = port
        self.sees_primary_down = False
        self.answer: asyncio.Event | None = None
        self.waiting = 0
        self.closed = 0

    async def sentinel_masters(self) -> dict[str, dict[str, Any]]:
        if self.answer is not None:
            self.waiting += 1
            await self.answer.wait()
        down = self.sees_primary_down
        state = {"ip": NEW_PRIMARY[0], "port": NEW_PRIMARY[1], "is_master": True}
        return {SERVICE: {**state, "is_sdown": down, "is_odown": down, "num-other-sentinels": 2}}

    async def aclose(self) -> None:
        self.closed += 1


def nodes_of(sentinel: Sentinel) -> list[FakeSentinelNode]:
    """The sentinel's clients as it lists them now (fakes, see the fixture below)."""
    return cast(list[FakeSentinelNode], list(sentinel.sentinels))


async def race(sentinel: Sentinel) -> list[FakeSentinelNode]:
    """Two discoveries while the first sentinel still sees the old primary down."""
    nodes = nodes_of(sentinel)
    first, second = nodes[0], nodes[1]
    first.sees_primary_down = True
    second.answer = asyncio.Event()
    calls = [asyncio.create_task(sentinel.discover_master(SERVICE)) for _ in range(2)]
    for _ in range(100):  # bounded: both reach the second sentinel within a few turns
        if second.waiting == 2:
            break
        await asyncio.sleep(0)
    assert second.waiting == 2
    second.answer.set()
    assert await asyncio.gather(*calls) == [NEW_PRIMARY, NEW_PRIMARY]
    return nodes


@pytest.fixture(autouse=True)
def fake_sentinel_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis.asyncio.sentinel, "Redis", FakeSentinelNode)


ADDRESSES = [("127.0.0.1", 26379), ("127.0.0.1", 26380), ("127.0.0.1", 26381)]


async def test_concurrent_discoveries_keep_and_close_every_sentinel() -> None:
    sentinel = KeptSentinel(ADDRESSES)
    first, second, third = await race(sentinel)
    assert nodes_of(sentinel)[0] is second  # the one that answered is asked first next time
    assert sorted(node.port for node in nodes_of(sentinel)) == [26379, 26380, 26381]
    await sentinel.aclose()
    assert [node.closed for node in (first, second, third)] == [1, 1, 1]


async def test_redis_py_alone_still_loses_a_sentinel() -> None:
    """The canary: when this fails, redis-py fixed the race and KeptSentinel can go."""
    sentinel = Sentinel(ADDRESSES)  # type: ignore[no-untyped-call]
    first, second, third = await race(sentinel)
    assert [node.port for node in nodes_of(sentinel)] == [26380, 26380, 26381]
    await sentinel.aclose()
    assert [node.closed for node in (first, second, third)] == [0, 2, 1]
