"""The fan-out over virtual shards: one call per shard, all at once, replies put back in order.

A store with several shards (_shards.py) sends a call that spans shards as
one call per shard, concurrently. Two rules hold every fan-out here: the
caller sees a failure only once every shard's call has ended (a write on
another shard may still be in flight, and must not run on unobserved), and
replies come back in the order of the caller's items, whatever shard each
went to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def gather_all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await calls at once; raise the first failure only once every call has ended.

    ``asyncio.gather`` would raise at the first failure and leave the others
    running unobserved: a write on another shard may still be in flight.
    """
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def group_indexes(keys: Iterable[int]) -> dict[int, list[int]]:
    """Item positions grouped by their shard, shards in order of first appearance."""
    parts: dict[int, list[int]] = {}
    for index, shard in enumerate(keys):
        parts.setdefault(shard, []).append(index)
    return parts


async def per_shard(
    items: Sequence[T],
    shard_of: Callable[[T], int],
    run: Callable[[int, Sequence[T]], Awaitable[list[R]]],
    missing: R,
) -> list[R]:
    """``run`` on each shard's items, all at once; the replies in ``items``' order."""
    parts = group_indexes(shard_of(item) for item in items)
    replies = await gather_all(
        run(shard, [items[i] for i in indexes]) for shard, indexes in parts.items()
    )
    results = [missing] * len(items)
    for indexes, reply in zip(parts.values(), replies, strict=True):
        for index, result in zip(indexes, reply, strict=True):
            results[index] = result
    return results
