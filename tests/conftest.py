"""Fixtures shared by the whole test tree."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests._redis_server import HOW_TO_GET_REDIS, redis_for_tests


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the session. Tests isolate themselves with ``key_prefix``."""
    if os.environ.get("JOBQUEUE_SKIP_REDIS_TESTS") == "1":
        pytest.skip("JOBQUEUE_SKIP_REDIS_TESTS=1")
    try:
        with redis_for_tests() as url:
            yield url
    except RuntimeError as error:
        pytest.fail(f"{error}\n{HOW_TO_GET_REDIS}", pytrace=False)


@pytest.fixture
def key_prefix() -> str:
    """A key prefix no other test uses, so tests share one Redis without seeing each other."""
    return f"jqtest-{uuid.uuid4().hex[:12]}"
