"""BullMQ (node) as a peer: its processes, driven like the Python children.

The node project is ``tests/benchmarks/bullmq/`` (``bullmq`` and ``ioredis`` pinned
by its ``package-lock.json``); install it once with
``npm ci --prefix tests/benchmarks/bullmq``. Without ``node_modules`` (or without
node) every BullMQ row is skipped with the reason from :func:`unavailable`.
``bench.mjs`` answers with the same ``READY`` / ``RESULT {json}`` lines as
``python -m tests.benchmarks._proc``, so :class:`~._common.Child` reads it as is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from ._common import ROOT, Child

PROJECT = ROOT / "tests" / "benchmarks" / "bullmq"
SCRIPT = PROJECT / "bench.mjs"
INSTALL = "npm ci --prefix tests/benchmarks/bullmq"


def unavailable() -> str | None:
    """Why BullMQ cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    if not (PROJECT / "node_modules" / "bullmq").is_dir():
        return f"tests/benchmarks/bullmq/node_modules is absent: run `{INSTALL}`"
    return None


def version() -> str:
    """The installed bullmq, ioredis and node versions (for the report)."""
    parts = []
    for name in ("bullmq", "ioredis"):
        manifest = PROJECT / "node_modules" / name / "package.json"
        parts.append(f"{name} {json.loads(manifest.read_text())['version']}")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return ", ".join([*parts, f"node {node.stdout.strip()}"])


@dataclass
class NodeChild(Child):
    """``node bench.mjs <mode> ...`` in the node project's folder."""

    def start(self) -> None:
        import tempfile

        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            ["node", str(SCRIPT), *self.args],
            cwd=PROJECT,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )


def child(mode: str, port: int, count: int, timeout_s: float, *extra: str) -> NodeChild:
    process = NodeChild(
        [mode, "--port", str(port), "--count", str(count), "--timeout-s", str(timeout_s), *extra]
    )
    process.start()
    return process


def run(mode: str, port: int, count: int, timeout_s: float, *extra: str) -> dict[str, Any]:
    """One node process to its RESULT line (killed after ``timeout_s``)."""
    process = child(mode, port, count, timeout_s, *extra)
    try:
        return process.result(timeout_s + 10)
    except Exception as error:
        raise RuntimeError(f"bullmq {mode}: {error}\n{process.stderr_tail()}") from error
    finally:
        process.close()
