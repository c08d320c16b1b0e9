"""Fixtures of the fault scenarios: a Redis that can crash, and a key prefix per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._redis_server import RedisProcess
from tests.faults._harness import new_prefix


@pytest.fixture
def redis_aof() -> Iterator[RedisProcess]:
    """A redis-server of its own, fsyncing every write to its AOF before replying."""
    try:
        server = RedisProcess(appendonly=True, extra_args=("--appendfsync", "always"))
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_plain() -> Iterator[RedisProcess]:
    """A redis-server of its own without persistence: for scenarios about clocks and costs."""
    try:
        server = RedisProcess()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def prefix() -> str:
    return new_prefix()
