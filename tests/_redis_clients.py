"""What a Redis server sees of its clients: for tests that bound the connections a store uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis


async def until(check: Callable[[], Awaitable[bool]], *, within_s: float = 10.0) -> bool:
    """Poll ``check`` until it holds or ``within_s`` passed (a bound, never an assertion)."""
    for _ in range(int(within_s / 0.02)):
        if await check():
            return True
        await asyncio.sleep(0.02)
    return await check()


async def clients(raw: aioredis.Redis) -> tuple[int, int]:
    """Connected and blocked clients (INFO clients)."""
    info = await raw.info("clients")
    return int(info["connected_clients"]), int(info["blocked_clients"])


async def subscribers(raw: aioredis.Redis) -> list[dict[str, Any]]:
    """Connections in pub/sub mode, as CLIENT LIST describes them."""
    return [
        client
        for client in await raw.client_list()
        if int(client.get("sub", 0)) + int(client.get("psub", 0)) > 0
    ]


async def numsub(raw: aioredis.Redis, channel: str) -> int:
    ((_, count),) = await raw.pubsub_numsub(channel)
    return int(count)


async def evalsha_calls(raw: aioredis.Redis) -> int:
    """How many EVALSHA the server has run: every store call that is a script sends one."""
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def peak_clients(
    raw: aioredis.Redis, tasks: Sequence[asyncio.Future[Any]], baseline: int
) -> tuple[int, int]:
    """The most connections (above ``baseline``) and blocked clients seen while ``tasks`` run."""
    peak = blocked_peak = 0
    for _ in range(1_000):  # bounded: the tasks end on their own wait
        if all(task.done() for task in tasks):
            break
        connected, blocked = await clients(raw)
        peak, blocked_peak = max(peak, connected - baseline), max(blocked_peak, blocked)
        await asyncio.sleep(0.05)
    return peak, blocked_peak
