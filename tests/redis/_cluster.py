"""The store on the test cluster, shared by the cluster test modules.

``SHARDS`` is large enough that 30 types spread over 3 masters (see
docs/operations.md); one place builds the store so every module reads the same
layout.
"""

from __future__ import annotations

from jobqueue.domain import JobService, SystemClock, UuidV7Generator
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from tests._redis_groups import ClusterProcesses

SHARDS = 32
"""Enough virtual shards that 30 types spread over 3 masters (see docs/operations.md)."""


def make_store(cluster: ClusterProcesses, prefix: str, shards: int = SHARDS) -> RedisJobStore:
    settings = RedisStoreSettings(url=cluster.url, key_prefix=prefix, shards=shards)
    return RedisJobStore(settings, clock=SystemClock())


def service_for(store: RedisJobStore) -> JobService:
    return JobService(store, clock=SystemClock(), ids=UuidV7Generator())
