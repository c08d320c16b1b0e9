"""Worker presence in Redis's own terms: which keys hold it, and that expired workers leave them.

The contract suite (tests/contract/test_presence.py) shows what a caller
sees; this shows that the keys stay bounded by the live workers, and that
presence sits on the one fixed tag ``{<prefix>}`` whatever the shard layout.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from jobqueue.domain import WorkerInfo
from jobqueue.redis import RedisJobStore, RedisStoreSettings

pytestmark = pytest.mark.redis


def worker(worker_id: str) -> WorkerInfo:
    return WorkerInfo(id=worker_id, host="h", pid=1, sdk="s", types=("a",), concurrency=1)


@pytest.mark.parametrize("shards", [1, 4])
async def test_presence_lives_on_the_prefix_tag_and_expired_workers_leave_the_keys(
    redis_url: str, key_prefix: str, raw: aioredis.Redis, shards: int
) -> None:
    prefix = key_prefix.rstrip(":")
    store = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=prefix, shards=shards))
    try:
        for n in range(5):
            await store.heartbeat(worker(f"short-{n}"), ttl_ms=1_000)
        await store.heartbeat(worker("long"), ttl_ms=60_000)
        exp, info = f"{{{prefix}}}:wk:exp", f"{{{prefix}}}:wk:info"
        assert (await raw.zcard(exp), await raw.hlen(info)) == (6, 6)
        assert await raw.keys(f"{{{prefix}.*}}:wk:*") == []  # no shard's tag holds any
        await asyncio.sleep(1.1)
        assert [w.id for w in await store.list_workers()] == ["long"]
        # The listing forgot the expired ones: the keys hold the live worker only.
        assert (await raw.zcard(exp), await raw.hlen(info)) == (1, 1)
        assert await store.deregister("long") is True
        assert (await raw.exists(exp), await raw.exists(info)) == (0, 0)
    finally:
        await store.close()
