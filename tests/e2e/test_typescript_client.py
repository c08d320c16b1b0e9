"""The TypeScript client in proto/ against a real server: ``npm test --prefix proto``.

The node suite (proto/test/client.test.ts) type-checks the client, starts
``jobqueue-server`` on the in-memory store, and drives JobService and
WorkerService from TypeScript. It proves the API is usable from a second
language through generated code alone. Its output is captured and shown only
when it fails, so the node test runner's summary is never taken for pytest's.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server._process import ServerProcess

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


def _run_suite(npm: str, env: dict[str, str]) -> None:
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


def _suite_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    for name in ("JOBQUEUE_SERVER", "JOBQUEUE_AUTH_TOKEN"):
        if name not in extra:
            env.pop(name, None)
    return env


# npm ci may run first when node_modules predates the TypeScript toolchain.
@pytest.mark.timeout(300)
def test_typescript_client_suite() -> None:
    npm = _npm()
    # The console script of this environment, so the node suite runs the
    # server under test instead of resolving (and maybe syncing) another one.
    server_bin = Path(sys.executable).with_name("jobqueue-server")
    assert server_bin.exists(), f"{server_bin} is missing: run `uv sync`"
    _run_suite(npm, _suite_env(JOBQUEUE_SERVER_BIN=str(server_bin)))


@pytest.mark.timeout(300)
def test_typescript_client_suite_against_a_running_server() -> None:
    """JOBQUEUE_SERVER points the node suite at a server someone else runs (a token too)."""
    npm = _npm()
    token = secrets.token_urlsafe(24)
    server = ServerProcess(env={"JOBQUEUE_AUTH_TOKEN": token})
    server.start()
    try:
        # Without the token, the same suite is refused: it really talks to this server.
        refused = subprocess.run(
            [npm, "test", "--prefix", str(PROTO), "--silent"],
            capture_output=True,
            text=True,
            env=_suite_env(JOBQUEUE_SERVER=f"127.0.0.1:{server.port}"),
            timeout=100,
            check=False,
        )
        assert refused.returncode != 0
        _run_suite(
            npm,
            _suite_env(JOBQUEUE_SERVER=server.base_url, JOBQUEUE_AUTH_TOKEN=token),
        )
    finally:
        code, output = server.stop()
    assert code == 0, output
    assert "refused the token" in refused.stdout, refused.stdout


@pytest.mark.timeout(300)
def test_the_package_builds_its_javascript_on_install(tmp_path: Path) -> None:
    """``prepare``, which npm runs on install from a checkout or git, emits dist/."""
    npm = _npm()
    manifest = json.loads((PROTO / "package.json").read_text())
    assert manifest["scripts"]["prepare"] == "npm run build:dist"
    dist = PROTO / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    subprocess.run([npm, "run", "prepare", "--prefix", str(PROTO), "--silent"], check=True)
    assert (dist / "src" / "index.d.ts").is_file()
    probe = tmp_path / "probe.mjs"
    probe.write_text(
        f"const m = await import({json.dumps((dist / 'src' / 'index.js').as_uri())});\n"
        "console.log(typeof m.connectJobqueue, typeof m.processBatch);\n"
    )
    node = shutil.which("node")
    assert node is not None
    out = subprocess.run([node, str(probe)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["function", "function"]
