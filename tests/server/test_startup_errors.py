"""What a newcomer sees when the server cannot start: one line that says why."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import redis

pytestmark = pytest.mark.integration


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobqueue_server"],
        env={**os.environ, "JOBQUEUE_HOST": "127.0.0.1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("wire", ["http", "grpcio"])
def test_a_busy_port_is_one_line_not_a_traceback(wire: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _start({"JOBQUEUE_PORT": str(port), "JOBQUEUE_WIRE": wire})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in error_lines[0]
    assert "JOBQUEUE_PORT" in error_lines[0]


def test_without_a_token_the_open_api_is_said_once() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _start({"JOBQUEUE_PORT": str(port)})
    assert result.stderr.count("every client may call every RPC") == 1, result.stderr


@pytest.mark.redis
def test_a_shards_setting_redis_contradicts_stops_the_start_in_one_line(
    redis_url: str, key_prefix: str
) -> None:
    """Checked before binding: it used to start, report healthy and fail every call."""
    with redis.Redis.from_url(redis_url) as raw:
        raw.hset("{" + key_prefix + "}:cfg", "shards", 4)  # as the prefix's first store left it
    result = _start(
        {
            "JOBQUEUE_PORT": "0",
            "JOBQUEUE_REDIS_URL": redis_url,
            "JOBQUEUE_KEY_PREFIX": key_prefix,
            "JOBQUEUE_REDIS_SHARDS": "2",
        }
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, result.stderr
    assert "recorded in Redis as 4" in error_lines[0]
    assert "JOBQUEUE_REDIS_SHARDS" in error_lines[0]


@pytest.mark.parametrize(
    ("env", "said"),
    [
        (
            {"JOBQUEUE_REDIS_URL": "redis://127.0.0.1:1/0", "JOBQUEUE_KEY_PREFIX": "a b"},
            "JOBQUEUE_KEY_PREFIX: String should match pattern",
        ),
        ({"JOBQUEUE_REDIS_URL": "http://user:secret@127.0.0.1:1"}, "not http://"),
        ({"JOBQUEUE_REDIS_URL": "REDIS://127.0.0.1:1/0"}, "not REDIS://"),
        ({"JOBQUEUE_REDIS_ADDR": "::"}, "url: Port could not be cast"),
        ({"JOBQUEUE_TLS_CERT_FILE": "/nonexistent.pem"}, "go together"),
        ({"JOBQUEUE_DASHBOARD_PAGE_SIZE": "0"}, "page_size must be positive"),
        ({"JOBQUEUE_DASHBOARD_ENABLED": "maybe"}, "JOBQUEUE_DASHBOARD_ENABLED"),
        ({"JOBQUEUE_PORT": "70000"}, "JOBQUEUE_PORT: Input should be less than or equal"),
    ],
)
def test_a_bad_setting_is_one_line_before_anything_serves(env: dict[str, str], said: str) -> None:
    # The store's and the dashboard's settings were read once the loop ran: a
    # traceback of 50 lines, after the port was bound.
    result = _start({"JOBQUEUE_PORT": "0", **env})
    assert result.returncode in (1, 2)
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr
    assert "listening" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, result.stderr
    assert said in error_lines[0]
