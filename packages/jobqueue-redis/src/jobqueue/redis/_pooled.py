"""redis-py's own asyncio client behind the store's connection interface.

The store's hot path is the multiplexed connection (``_multiplex.py``);
``RedisStoreSettings(connection="redis-py")`` swaps in this one instead, a
connection per concurrent call from redis-py's pool (hiredis parsing where
installed). It exists to measure the two side by side (docs/benchmarks.md)
and as the fallback should the multiplexed one misbehave somewhere; the
same failover tests run on both.

Replies are returned raw (no response callbacks), as the multiplexed
connection returns them, so the store reads both alike.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from ._errors import is_failover

_Arg = bytes | str | int | float


class PooledConnection:
    """Each call borrows a connection of redis-py's pool; failover replies drop the idle ones."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._client.response_callbacks.clear()
        self._in_flight = 0
        self._background: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def address(self) -> tuple[str, int] | None:
        """The primary a Sentinel-managed pool last resolved (None for a plain URL: no fence)."""
        master = getattr(self._client.connection_pool, "master_address", None)
        return (str(master[0]), int(master[1])) if master else None

    def retire(self) -> None:
        """Close the idle connections, so the next calls connect (and resolve) afresh."""
        pool = self._client.connection_pool
        task = asyncio.get_running_loop().create_task(pool.disconnect(inuse_connections=False))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def execute(self, *args: _Arg) -> Any:
        self._in_flight += 1
        try:
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        except Exception as error:
            await self._forget_node(error)
            raise
        finally:
            self._in_flight -= 1

    async def execute_in_order(self, *commands: tuple[_Arg, ...]) -> list[Any]:
        """``commands`` on one connection, in one write; error replies are returned."""
        self._in_flight += 1
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
        finally:
            self._in_flight -= 1
        for reply in replies:
            await self._forget_node(reply)
        return replies

    async def close(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._client.aclose()

    async def _forget_node(self, error: object) -> None:
        if not isinstance(error, BaseException):
            return
        # The connection that read a failover reply went back to the pool
        # still open to that node: close the idle ones, so the next call
        # connects (and asks Sentinel, when configured) afresh.
        if is_failover(error):
            await self._client.connection_pool.disconnect(inuse_connections=False)
