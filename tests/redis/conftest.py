"""The Redis tests' shared fixtures: a plain client of the session's Redis, and
one Redis Cluster per test module that asks for ``cluster``.

Module scope: starting six nodes and creating the cluster takes seconds, and
the tests of a module use their own key prefixes. Tests that kill nodes define
a function-scoped ``cluster`` of their own, which overrides this one.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from tests._redis_groups import ClusterProcesses, running_cluster


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain redis-py client of the session's Redis, to read what the store wrote."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterProcesses]:
    if os.environ.get("JOBQUEUE_SKIP_REDIS_TESTS") == "1":
        pytest.skip("JOBQUEUE_SKIP_REDIS_TESTS=1")
    with running_cluster() as nodes:
        yield nodes
