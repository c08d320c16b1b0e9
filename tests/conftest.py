"""Fixtures shared by the whole test tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._bytecode import compile_bytecode
from tests._redis_server import HOW_TO_GET_REDIS, redis_for_tests

PROTO_DIR = Path(__file__).resolve().parent.parent / "proto"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile bytecode, and install the pinned buf toolchain once.

    Servers and workers started by the tests then start as fast as installed
    ones (see tests/_bytecode.py). The end-to-end tests drive the server with
    `buf curl`; npm installs it from proto/package-lock.json, so a fresh clone
    needs only `uv run pytest`. Without npm those tests fail and say how to
    get it.
    """
    compile_bytecode()
    if (PROTO_DIR / "node_modules" / ".bin" / "buf").exists() or shutil.which("npm") is None:
        return
    subprocess.run(
        ["npm", "ci", "--prefix", str(PROTO_DIR), "--no-audit", "--no-fund", "--loglevel=error"],
        check=False,
        timeout=600,
    )


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
