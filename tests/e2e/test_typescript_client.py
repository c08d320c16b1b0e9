"""The TypeScript client in proto/ against a real server: ``npm test --prefix proto``.

The node suite (proto/test/client.test.ts) type-checks the client, starts
``jobqueue-server`` on the in-memory store, and drives JobService and
WorkerService from TypeScript. It proves the API is usable from a second
language through generated code alone. Its output is captured and shown only
when it fails, so the node test runner's summary is never taken for pytest's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"
HOW_TO_GET_NODE = (
    "The TypeScript client test needs Node.js 20+ and npm (Debian: apt-get install nodejs npm), "
    "then `npm ci --prefix proto`."
)


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail(HOW_TO_GET_NODE, pytrace=False)
    # A node_modules from before the TypeScript toolchain joined package.json
    # has buf but not tsx: bring it up to the lock file.
    if not (PROTO / "node_modules" / ".bin" / "tsx").exists():
        subprocess.run(
            [npm, "ci", "--prefix", str(PROTO), "--no-audit", "--no-fund", "--loglevel=error"],
            check=False,
            timeout=600,
        )
    return npm


# npm ci may run first when node_modules predates the TypeScript toolchain.
@pytest.mark.timeout(300)
def test_typescript_client_suite() -> None:
    npm = _npm()
    # The console script of this environment, so the node suite runs the
    # server under test instead of resolving (and maybe syncing) another one.
    server_bin = Path(sys.executable).with_name("jobqueue-server")
    assert server_bin.exists(), f"{server_bin} is missing: run `uv sync`"
    env = {**os.environ, "JOBQUEUE_SERVER_BIN": str(server_bin)}
    result = subprocess.run(
        [npm, "test", "--prefix", str(PROTO), "--silent"],
        capture_output=True,
        text=True,
        env=env,
        timeout=100,
        check=False,
    )
    assert result.returncode == 0, (
        f"`npm test --prefix proto` exited {result.returncode}\n"
        f"--- node output ---\n{result.stdout}\n--- node stderr ---\n{result.stderr}"
    )
    # The spec reporter's summary: every test ran and passed.
    counts = dict(re.findall(r"^\S* ?(pass|fail) (\d+)$", result.stdout, re.MULTILINE))
    assert counts.get("fail") == "0", result.stdout
    assert int(counts.get("pass", "0")) >= 4, result.stdout
