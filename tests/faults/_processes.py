"""Real processes for the fault scenarios: the server, its health, and a pool of ledger workers.

Everything binds 127.0.0.1 only. Every wait here is bounded in time.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests._redis_process import RedisProcess, free_port
from tests.faults._scenario import (
    ROOT,
    SERVING,
    WORKER_SCRIPT,
)


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


@contextmanager
def own_redis(**options: Any) -> Iterator[RedisProcess]:
    """A started redis-server of the test's own (``RedisProcess`` options), closed afterwards.

    A scenario that kills or restarts Redis must not share the session's; a
    missing redis-server fails the test rather than skipping it.
    """
    try:
        server = RedisProcess(**options)
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.close()


# -- processes -------------------------------------------------------------------


class ServerProc:
    """``python -m jobqueue_server`` over Redis on a free loopback port; output to a file."""

    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        log_dir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "JOBQUEUE_HOST": "127.0.0.1",
            "JOBQUEUE_PORT": str(self.port),
            "JOBQUEUE_REDIS_URL": redis_url,
            "JOBQUEUE_KEY_PREFIX": prefix,
            "JOBQUEUE_SHUTDOWN_GRACE_SECONDS": "2",
            "JOBQUEUE_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.env.pop("REDIS_ADDR", None)
        self.env.pop("JOBQUEUE_REDIS_ADDR", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, wait: bool = True) -> None:
        self.starts += 1
        log = open(self.log_dir / f"server-{self.starts}.log", "wb")  # noqa: SIM115
        with log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jobqueue_server"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            wait_serving(self.port, timeout_s=20)

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 15) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signum)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            return None

    def output(self) -> str:
        return "".join(
            path.read_text(errors="replace") for path in sorted(self.log_dir.glob("server-*.log"))
        )


def health(port: int, timeout_s: float = 1.0) -> int | None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout_s
            )
        except grpc.RpcError:
            return None
        status: int = response.status
        return status


def wait_serving(port: int, timeout_s: float) -> float:
    """Wait until health answers SERVING; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if health(port, timeout_s=0.5) == SERVING:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"the server on port {port} did not turn SERVING in {timeout_s} s")


@dataclass
class WorkerPool:
    """Ledger worker processes, killed and replaced at will.

    Several pools may share one ledger folder (say, one per faked clock): each
    names its log files after ``name``, and ``env`` is added to the
    environment of each of its processes.
    """

    ledger_dir: Path
    args: list[str]
    env: dict[str, str] | None = None
    name: str = "worker"
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    killed: dict[int, int] = field(default_factory=dict)
    """pid → monotonic time (ns) by which its SIGKILL had taken effect."""
    exited: dict[int, int] = field(default_factory=dict)
    """pid → monotonic time (ns) by which the process was known dead, however it ended."""
    started: int = 0

    @classmethod
    def on_redis(
        cls,
        ledger_dir: Path,
        url: str,
        prefix: str,
        *,
        concurrency: int,
        lease_ms: int,
        work_ms: int = 10,
        extra: Sequence[str] = (),
    ) -> WorkerPool:
        """The scenarios' usual pool: ledger workers on Redis directly, no server between."""
        return cls(
            ledger_dir,
            [
                *("--redis-url", url, "--prefix", prefix),
                *("--concurrency", str(concurrency), "--lease-ms", str(lease_ms)),
                *("--work-ms", str(work_ms), *extra),
            ],
        )

    def spawn(self) -> int:
        self.started += 1
        log = open(self.ledger_dir / f"{self.name}-{self.started}.log", "wb")  # noqa: SIM115
        with log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER_SCRIPT),
                    "--ledger-dir",
                    str(self.ledger_dir),
                    *self.args,
                ],
                cwd=ROOT,
                env={**os.environ, **self.env} if self.env else None,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[process.pid] = process
        return process.pid

    def spawn_many(self, count: int, *, timeout_s: float = 20) -> list[int]:
        pids = [self.spawn() for _ in range(count)]
        deadline = time.monotonic() + timeout_s
        while not all((self.ledger_dir / f"ready-{pid}").exists() for pid in pids):
            for pid in pids:
                code = self.processes[pid].poll()
                if code is not None:
                    raise AssertionError(f"worker {pid} exited with {code}: {self.log_of(pid)}")
            if time.monotonic() > deadline:
                raise AssertionError("workers did not start in time")
            time.sleep(0.05)
        return pids

    def wait_ready(self, timeout_s: float = 20) -> None:
        """Wait until every live worker has registered its handlers (and its signal handlers)."""
        deadline = time.monotonic() + timeout_s
        while not all((self.ledger_dir / f"ready-{pid}").exists() for pid in self.alive):
            if time.monotonic() > deadline:
                raise AssertionError("workers did not start in time")
            time.sleep(0.05)

    def kill(self, pid: int) -> None:
        process = self.processes.pop(pid)
        process.kill()
        process.wait(10)
        # Taken after wait(): every run of that process had ended by then.
        self.killed[pid] = self.exited[pid] = time.monotonic_ns()

    def terminate(self, pid: int, timeout_s: float = 15) -> int | None:
        """SIGTERM one worker (a graceful stop) and wait; its exit code (None: killed)."""
        process = self.processes.pop(pid)
        process.send_signal(signal.SIGTERM)
        try:
            code: int | None = process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            code = None
        self.exited[pid] = time.monotonic_ns()
        return code

    @property
    def alive(self) -> list[int]:
        return [pid for pid, process in self.processes.items() if process.poll() is None]

    def log_of(self, pid: int) -> str:
        # Log files are numbered by start order, not by pid: return them all, trimmed.
        text = "".join(
            path.read_text(errors="replace")[-2000:]
            for path in sorted(self.ledger_dir.glob(f"{self.name}-*.log"))
        )
        return text[-8000:]

    async def kill_at_random(self, kills: int, *, every_s: float, rng: random.Random) -> int:
        """SIGKILL a random live worker every 0.5-1.5 x ``every_s`` and spawn a replacement.

        Returns how many were killed: ``kills`` unless the pool had no live
        worker for too long (bounded at three times the planned duration).
        """
        started = time.monotonic()
        done = 0
        while done < kills and time.monotonic() - started < kills * every_s * 3:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * every_s)
            victims = self.alive
            if victims:
                self.kill(rng.choice(victims))
                done += 1
            self.spawn()
        return done

    def stop_all(self, timeout_s: float = 15) -> dict[int, int | None]:
        """SIGTERM every worker and wait; returns each exit code (None: it had to be killed)."""
        codes: dict[int, int | None] = {}
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for pid, process in self.processes.items():
            try:
                codes[pid] = process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
                codes[pid] = None
            self.exited[pid] = time.monotonic_ns()
        self.processes.clear()
        return codes


# -- the ledger -----------------------------------------------------------------
