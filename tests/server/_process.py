"""``jobqueue-server`` as a child process, and ``buf curl`` as an outside client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests._redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "proto" / "node_modules" / ".bin" / "buf"
HOW_TO_GET_BUF = "buf is missing: run `npm ci --prefix proto` (it installs @bufbuild/buf)."


def health_status(port: int, service: str = "", timeout_s: float = 1.0) -> int | None:
    """The server's grpc.health.v1 answer, or None when it does not answer."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError:
            return None
        status: int = response.status
        return status


def wait_for_health(port: int, wanted: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    last: int | None = None
    while time.monotonic() < deadline:
        last = health_status(port)
        if last == wanted:
            return
        time.sleep(0.05)
    raise AssertionError(f"health stayed {last}, wanted {wanted}")


class ServerProcess:
    """``python -m jobqueue_server`` on a free loopback port, configured by environment."""

    def __init__(self, *, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "JOBQUEUE_HOST": "127.0.0.1",
            "JOBQUEUE_PORT": str(self.port),
            "JOBQUEUE_SHUTDOWN_GRACE_SECONDS": "2",
            **(env or {}),
        }
        for name in ("JOBQUEUE_REDIS_URL", "REDIS_ADDR", "JOBQUEUE_REDIS_ADDR"):
            if env is None or name not in env:
                self.env.pop(name, None)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobqueue_server"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            # Generous: a two-core CI machine running the whole suite can take
            # seconds to import and start a server.
            wait_for_health(self.port, health_pb2.HealthCheckResponse.SERVING, timeout_s=30.0)
        except AssertionError as error:
            code, output = self.stop()
            raise AssertionError(f"{error}; server exited {code} with:\n{output}") from None

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal the server, wait for it to exit; returns its exit code and output."""
        if self.process is None:
            return 0, ""
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signum)
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        return process.returncode, output.decode(errors="replace")


@dataclass
class CurlResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass(frozen=True)
class CurlMode:
    """How ``buf curl`` reaches the server: protocol, HTTP version, and where the schema comes from.

    With ``reflect`` set the schema comes from the server's reflection service
    (over HTTP/2, which its bidirectional stream needs); without it, from the
    .proto sources, so the call itself may go over HTTP/1.1.
    """

    protocol: str = "grpc"
    http2: bool = True
    reflect: str | None = "grpc-v1alpha"

    @property
    def name(self) -> str:
        schema = self.reflect or "schema"
        return f"{self.protocol}-{'h2' if self.http2 else 'http1.1'}-{schema}"

    def args(self) -> list[str]:
        args = ["--protocol", self.protocol]
        if self.http2:
            args.append("--http2-prior-knowledge")
        if self.reflect is None:
            args += ["--schema", str(ROOT / "proto")]
        else:
            args += ["--reflect-protocol", self.reflect]
        return args


GRPC = CurlMode()


def buf_curl(
    base_url: str, *args: str, data: object | None = None, mode: CurlMode = GRPC
) -> CurlResult:
    """Run ``buf curl``: a client that knows nothing of our code."""
    command = [str(BUF), "curl", *mode.args(), *args]
    if data is not None:
        command += ["--data", json.dumps(data)]
    result = subprocess.run(command, capture_output=True, timeout=30, check=False, text=True)
    return CurlResult(result.returncode, result.stdout, result.stderr)


def rpc(base_url: str, method: str, data: object, mode: CurlMode = GRPC) -> CurlResult:
    return buf_curl(
        base_url, f"{base_url}/mpataki.jobqueue.v1.JobService/{method}", data=data, mode=mode
    )
