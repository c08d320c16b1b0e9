"""The containers' entry commands, run directly with the environment compose gives them.

No Docker engine on CI: the server, healthcheck, redis and worker commands of
compose.yaml and the Dockerfile run here as processes, on loopback, with a real
Redis, to show the images would work.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from jobqueue.client import JobClient, JobStatus, WaitTimeout
from tests._redis_process import free_port, wait_until_up
from tests.e2e._repo_files import (
    BIN,
    SERVING,
    ConsoleScript,
    Stage,
    require_landed,
    script_of,
    service_env,
    stage_cmd,
)
from tests.server._process import health_status, wait_for_health

pytestmark = pytest.mark.e2e


def compose_environment(
    services: dict[str, dict[str, Any]], service: str, **overrides: str
) -> dict[str, str]:
    """This process's environment minus jobqueue settings, plus the service's compose one."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_") and k != "REDIS_ADDR"
    }
    return {**env, **service_env(services[service]), **overrides}


class Process:
    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.command = command
        self.popen = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def stop(self) -> tuple[int, str]:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            output, _ = self.popen.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            output, _ = self.popen.communicate()
        return self.popen.returncode, output.decode(errors="replace")


@pytest.fixture
def compose_server(
    services: dict[str, dict[str, Any]], stages: dict[str, Stage], redis_url: str, key_prefix: str
) -> Iterator[tuple[int, dict[str, str]]]:
    """The server image's command with the compose environment; Redis, host and port local."""
    port = free_port()
    env = compose_environment(
        services,
        "server",
        JOBQUEUE_REDIS_URL=redis_url,
        # Loopback and a free port, so parallel runs do not clash; the
        # healthcheck finds it through JOBQUEUE_PORT as in the container.
        JOBQUEUE_HOST="127.0.0.1",
        JOBQUEUE_PORT=str(port),
        JOBQUEUE_KEY_PREFIX=key_prefix,
        JOBQUEUE_SHUTDOWN_GRACE_SECONDS="2",
    )
    command = stage_cmd(stages, services["server"]["build"]["target"])
    server = Process([str(BIN / command[0]), *command[1:]], env)
    try:
        wait_for_health(port, SERVING, timeout_s=30)
    except AssertionError:
        code, output = server.stop()
        pytest.fail(f"{command} did not become healthy (exit {code}):\n{output}")
    yield port, env
    code, output = server.stop()
    assert code == 0, output


def run_healthcheck(
    services: dict[str, dict[str, Any]], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    command = services["server"]["healthcheck"]["test"][1:]
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.integration
def test_server_command_serves_with_the_compose_environment(
    compose_server: tuple[int, dict[str, str]],
    services: dict[str, dict[str, Any]],
) -> None:
    port, env = compose_server
    assert health_status(port) == SERVING
    result = run_healthcheck(services, env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_healthcheck_fails_when_no_server_answers(services: dict[str, dict[str, Any]]) -> None:
    env = compose_environment(services, "server", JOBQUEUE_PORT=str(free_port()))
    started = time.monotonic()
    result = run_healthcheck(services, env)
    assert result.returncode != 0
    timeout = services["server"]["healthcheck"]["timeout"]
    assert time.monotonic() - started < int(timeout.rstrip("s")) + 2, "slower than compose waits"


@pytest.mark.integration
@pytest.mark.redis
def test_redis_command_persists_acknowledged_writes(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The redis service's command keeps a write across a SIGKILL, and its healthcheck answers."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    command = services["redis"]["command"]
    command = shlex.split(command) if isinstance(command, str) else list(command)
    port = free_port()
    # The image's working directory /data is the volume; here a temporary one.
    args = [
        binary,
        *command[1:],
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp_path),
    ]
    url = f"redis://127.0.0.1:{port}/0"

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(url)
        return process

    process = start()
    try:
        client = redis.Redis.from_url(url)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        client.set("jobqueue:compose-check", "acknowledged")
        client.close()
        healthcheck = services["redis"]["healthcheck"]["test"][1:]
        if shutil.which(healthcheck[0]) is not None:
            ping = subprocess.run(
                [healthcheck[0], "-p", str(port), *healthcheck[1:]],
                capture_output=True,
                text=True,
                timeout=10,
            )
            assert ping.returncode == 0
            assert ping.stdout.strip() == "PONG"
        process.kill()  # no shutdown save: only the AOF can bring the key back
        process.wait(10)
        process = start()
        client = redis.Redis.from_url(url)
        assert client.get("jobqueue:compose-check") == b"acknowledged"
        client.close()
    finally:
        process.kill()
        process.wait(10)


# The seed's example job; the example worker handles it (issue 4: `send_email`).
EXAMPLE_JOB_TYPE = "send_email"


EXAMPLE_PAYLOAD = {"to": "test@example.com"}


@pytest.mark.integration
def test_worker_command_completes_a_job(
    compose_server: tuple[int, dict[str, str]],
    services: dict[str, dict[str, Any]],
    stages: dict[str, Stage],
    scripts: dict[str, ConsoleScript],
) -> None:
    script = scripts[script_of("worker", services, stages)]
    require_landed(script.top_package)
    port, server_env = compose_server
    # The worker's compose environment, on the server's Redis and key prefix.
    env = compose_environment(
        services,
        "worker",
        JOBQUEUE_REDIS_URL=server_env["JOBQUEUE_REDIS_URL"],
        JOBQUEUE_KEY_PREFIX=server_env["JOBQUEUE_KEY_PREFIX"],
    )
    command = stage_cmd(stages, services["worker"]["build"]["target"])
    worker = Process([str(BIN / command[0]), *command[1:]], env)
    try:
        with JobClient(target=f"127.0.0.1:{port}") as client:
            job = client.enqueue(EXAMPLE_JOB_TYPE, EXAMPLE_PAYLOAD)
            try:
                done = client.wait(job.id, timeout_s=30)
            except WaitTimeout:
                done = client.get(job.id)
    finally:
        code, output = worker.stop()
    assert done.status is JobStatus.COMPLETED, f"{done}\nworker output:\n{output}"
    assert done.attempts == 1
    assert code == 0, f"the worker did not stop cleanly on SIGTERM:\n{output}"
