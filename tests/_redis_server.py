"""Where the tests find Redis: one import point over the single-server and group modules.

Kept so that every ``from tests._redis_server import ...`` keeps working;
``tests._redis_process`` holds one server, ``tests._redis_groups`` the
Sentinel groups and clusters.
"""

from __future__ import annotations

from tests._redis_groups import ClusterProcesses, SentinelGroup
from tests._redis_process import (
    HOW_TO_GET_REDIS,
    RedisProcess,
    free_port,
    redis_for_tests,
    wait_until_up,
)

__all__ = [
    # one server
    "HOW_TO_GET_REDIS",
    "RedisProcess",
    "free_port",
    "redis_for_tests",
    "wait_until_up",
    # groups of servers
    "ClusterProcesses",
    "SentinelGroup",
]
