"""One real Redis for the tests: an URL, a container, or a local redis-server child.

Sentinel groups and clusters, built from several of these processes, live in
``tests._redis_groups``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

HOW_TO_GET_REDIS = (
    "The Redis tests need a real Redis server. Set JOBQUEUE_TEST_REDIS_URL to one, "
    "start a Docker engine (testcontainers), or install redis-server "
    "(Debian: apt-get install redis-server). Set JOBQUEUE_SKIP_REDIS_TESTS=1 to skip them."
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(
    url: str, timeout_s: float = 10.0, process: subprocess.Popen[bytes] | None = None
) -> bool:
    """Until Redis at ``url`` answers; False at once if ``process`` exited (a port taken)."""
    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(url)
    try:
        while True:
            try:
                client.ping()
                return True
            except redis.ConnectionError:
                if process is not None and process.poll() is not None:
                    return False
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
    finally:
        client.close()


class RedisProcess:
    """A redis-server child process on a loopback port, optionally persistent.

    The fault tests stop and restart it from the same directory, so the data
    dir and the port outlive one process.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        appendonly: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(HOW_TO_GET_REDIS)
        self.binary = binary
        self._own_port = port is None
        self._started = False
        self.port = port or free_port()
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="jobqueue-redis-")
        self.data_dir = data_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.appendonly = appendonly
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--logfile", str(self.data_dir / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        # A port free when picked may be taken before redis-server binds it (as
        # may a cluster node's bus port, also picked ahead). On a first start
        # with ports of our own choosing, they are picked again, a few times; a
        # restart keeps its port (fault tests reconnect to it), as does a given one.
        retry = self._own_port and not self._started
        for _ in range(5 if retry else 1):
            self.process = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if wait_until_up(self.url, process=self.process):
                self._started = True
                return
            self.process.wait(10)
            if not retry:
                break
            self.port = free_port()
            args[args.index("--port") + 1] = str(self.port)
            if "--cluster-port" in args:
                args[args.index("--cluster-port") + 1] = str(free_port())
                self.extra_args = tuple(args[args.index("--logfile") + 2 :])
        raise RuntimeError(f"redis-server exited at start; see {self.data_dir / 'redis.log'}")

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill does."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@contextmanager
def redis_for_tests() -> Iterator[str]:
    """Yield the URL of a Redis that the tests may write to.

    In order: JOBQUEUE_TEST_REDIS_URL; a testcontainers Redis where a Docker
    engine answers; a redis-server binary started here.
    """
    url = os.environ.get("JOBQUEUE_TEST_REDIS_URL")
    if url:
        wait_until_up(url)
        yield url
        return
    if _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
        return
    server = RedisProcess()
    server.start()
    try:
        yield server.url
    finally:
        server.close()
