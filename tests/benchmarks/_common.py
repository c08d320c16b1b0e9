"""Shared pieces: payloads, clocks, percentiles, child processes that report JSON.

The measured children import this module too, so what only the driver needs
(pathlib, tempfile: ~1.2 MiB of a worker's peak RSS) is imported where it is used.
"""

from __future__ import annotations

import json
import os
import resource
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    ROOT: Path
    """The repository's root; computed on first use (see ``__getattr__``)."""


@cache
def _root() -> Path:
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


def __getattr__(name: str) -> Any:
    if name == "ROOT":
        return _root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


PAYLOAD_BYTES = 100
"""Every job carries ~100 bytes, as the issue asks."""
PADDING = "x" * 70


def payload_bytes(stamp: float = 0.0) -> bytes:
    """A 100-byte payload whose first field is a monotonic timestamp (for latency)."""
    head = f"{stamp:.6f}|".encode()
    return head + b"x" * (PAYLOAD_BYTES - len(head))


def stamp_of(payload: bytes) -> float:
    return float(payload.split(b"|", 1)[0])


def now() -> float:
    """CLOCK_MONOTONIC: system-wide on Linux, so comparable across our processes."""
    return time.monotonic()


def peak_rss_mib() -> float:
    """Peak resident set of this process: VmHWM, which starts afresh at exec.

    getrusage's ru_maxrss would not do: Linux carries it over from the forked
    parent, so every child would report at least the benchmark driver's size.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_parts_mib() -> dict[str, float]:
    """This process's resident set now, split: ``file`` (code and libraries mapped
    from files, e.g. grpcio's 17 MB extension) and ``anon`` (the heap and the
    rest). The split says whether a worker's size is its data or its libraries."""
    parts = {"RssFile": "file", "RssAnon": "anon"}
    found: dict[str, float] = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in parts:
                found[parts[key]] = int(value.split()[0]) / 1024  # "  12345 kB"
    return found


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def report(data: dict[str, Any]) -> None:
    """A child's single answer: one JSON line on stdout, prefixed so logs cannot confuse it."""
    sys.stdout.write("RESULT " + json.dumps(data) + "\n")
    sys.stdout.flush()


def signal_ready() -> None:
    sys.stdout.write("READY\n")
    sys.stdout.flush()


@dataclass
class Child:
    """A benchmark child process: ``python -m tests.benchmarks._proc <args>``."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _buffer: bytes = b""
    _stderr: Any = None

    def start(self) -> None:
        import tempfile

        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks._proc", *self.args],
            cwd=_root(),
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        line = self._line(timeout_s)
        if line.strip() != "READY":
            raise RuntimeError(f"child {self.args} did not get ready: {line!r}")

    def result(self, timeout_s: float) -> dict[str, Any]:
        """The child's RESULT line; kills the child if it does not come in time."""
        deadline = now() + timeout_s
        try:
            while True:
                line = self._line(deadline - now())
                if line.startswith("RESULT "):
                    data: dict[str, Any] = json.loads(line[len("RESULT ") :])
                    return data
        finally:
            self.stop()

    def read_line(self, timeout_s: float) -> str:
        """The child's next stdout line (cost.py reads the server's STATS lines)."""
        return self._line(timeout_s)

    def _line(self, timeout_s: float) -> str:
        """One line of the child's stdout, read from the raw pipe so no line hides in a buffer."""
        assert self.process is not None
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = now() + max(timeout_s, 0.0)
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], max(deadline - now(), 0.0))
            if not ready:
                self.stop()
                raise TimeoutError(f"child {self.args} gave no answer in {timeout_s:.0f} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                code = self.process.wait(5)
                raise RuntimeError(
                    f"child {self.args} exited ({code}) without an answer:\n{self.stderr_tail()}"
                )
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def stderr_tail(self, size: int = 2000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return str(self._stderr.read()[-size:].decode(errors="replace"))

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process.stdout is not None:
            process.stdout.close()
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
