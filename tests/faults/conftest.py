"""Fixtures of the fault scenarios: a Redis that can crash, and a key prefix per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._redis_process import RedisProcess
from tests.faults._processes import own_redis
from tests.faults._scenario import new_prefix


@pytest.fixture
def redis_aof() -> Iterator[RedisProcess]:
    """A redis-server of its own, fsyncing every write to its AOF before replying."""
    with own_redis(appendonly=True, extra_args=("--appendfsync", "always")) as server:
        yield server


@pytest.fixture
def redis_plain() -> Iterator[RedisProcess]:
    """A redis-server of its own without persistence: for scenarios about clocks and costs."""
    with own_redis() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return new_prefix()
