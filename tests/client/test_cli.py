"""The ``jobqueue`` console script, run as a user runs it, against a real server process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jobqueue.worker import GrpcSource, JobContext, PermanentError, Worker, WorkerSettings
from tests._redis_server import free_port

pytestmark = pytest.mark.integration

JOBQUEUE = Path(sys.executable).with_name("jobqueue")
MISSING_ID = "01900000-0000-7000-8000-000000000000"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines()]


def environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("JOBQUEUE_")}
    env["COLUMNS"] = "200"
    return env


def run_cli(target: str | None, *args: str, stdin: str | None = None) -> Result:
    command = [str(JOBQUEUE), *(["--server", target] if target else []), *args]
    done = subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment(),
    )
    return Result(done.returncode, done.stdout, done.stderr)


async def run_cli_async(target: str, *args: str) -> Result:
    process = await asyncio.create_subprocess_exec(
        str(JOBQUEUE),
        "--server",
        target,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(),
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Result(process.returncode, stdout.decode(), stderr.decode())


def assert_one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.code == code, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jobqueue: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_the_console_script_is_installed() -> None:
    assert JOBQUEUE.exists(), "run `uv sync`: the jobqueue console script is missing"
    result = run_cli(None, "--help")
    assert result.code == 0
    for command in ("submit", "get", "cancel", "list", "stats", "watch", "worker", "Exit codes"):
        assert command in result.stdout


def test_submit_get_cancel(target: str) -> None:
    submitted = run_cli(target, "submit", "cli_basic", '{"to": "a"}', "--in", "5m")
    assert submitted.code == 0, submitted
    assert "cli_basic" in submitted.stdout
    assert "SCHEDULED" in submitted.stdout  # PENDING, due in 5 minutes
    job = run_cli(target, "--json", "list", "--type", "cli_basic").json()
    job_id = job["id"]
    assert job["payload"] == '{"to": "a"}'

    shown = run_cli(target, "get", job_id)
    assert shown.code == 0
    assert job_id in shown.stdout

    cancelled = run_cli(target, "cancel", job_id)
    assert cancelled.code == 0
    assert "CANCELLED" in cancelled.stdout
    assert_one_line_error(run_cli(target, "cancel", job_id), 4, job_id, "CANCELLED")


def test_json_output_parses(target: str) -> None:
    submitted = run_cli(
        target, "--json", "submit", "cli_json", "text", "--max-attempts", "2", "--key", "cli-k1"
    )
    assert submitted.code == 0, submitted
    job = submitted.json()
    assert job["status"] == "pending"
    assert job["payload"] == "text"
    assert job["max_attempts"] == 2
    assert job["idempotency_key"] == "cli-k1"
    again = run_cli(target, "--json", "submit", "cli_json", "text", "--key", "cli-k1").json()
    assert again["id"] == job["id"]

    assert run_cli(target, "--json", "get", job["id"]).json()["id"] == job["id"]
    listed = run_cli(target, "--json", "list", "--type", "cli_json", "--status", "pending")
    assert [row["id"] for row in listed.json_lines()] == [job["id"]]
    stats = run_cli(target, "--json", "stats").json()
    rows = {row["type"]: row for row in stats["types"]}
    assert rows["cli_json"]["pending"] == 1


def test_submit_a_jobs_file(target: str, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        "\n".join(
            [
                '{"type": "cli_file", "payload": {"n": 1}}',
                "",
                '{"type": "cli_file", "payload": "plain", "in": "30s", "key": "file-k"}',
                '{"type": "cli_file", "at": "2040-01-01T00:00:00Z", "max_attempts": 2}',
                *[json.dumps({"type": "cli_file", "payload": i}) for i in range(7)],
            ]
        )
    )
    result = run_cli(target, "--json", "submit", "--file", str(jobs), "--batch-size", "4")
    assert result.code == 0, result
    submitted = result.json_lines()
    assert len(submitted) == 10
    assert submitted[0]["payload"] == '{"n":1}'
    assert submitted[1]["payload"] == "plain"
    assert submitted[1]["idempotency_key"] == "file-k"
    assert submitted[2]["run_at"].startswith("2040-01-01T00:00:00")
    listed = run_cli(target, "--json", "list", "--type", "cli_file", "--limit", "0")
    assert len(listed.json_lines()) == 10

    human = run_cli(target, "submit", "--file", "-", stdin='{"type": "cli_file"}\n')
    assert human.code == 0, human
    assert "submitted 1 job" in human.stdout


def test_a_bad_jobs_file_submits_nothing(target: str, tmp_path: Path) -> None:
    jobs = tmp_path / "bad.jsonl"
    jobs.write_text('{"type": "cli_bad_file"}\n{"tpye": "cli_bad_file"}\n')
    assert_one_line_error(run_cli(target, "submit", "--file", str(jobs)), 2, "bad.jsonl:2", "tpye")
    jobs.write_text('{"type": "cli_bad_file"}\n{"type": "not valid!"}\n')
    assert_one_line_error(run_cli(target, "submit", "--file", str(jobs)), 2, "bad.jsonl:2: type")
    assert run_cli(target, "--json", "list", "--type", "cli_bad_file").stdout == ""


@pytest.fixture
async def worker(target: str) -> AsyncIterator[Worker]:
    worker = Worker(
        GrpcSource(target, timeout_s=5),
        settings=WorkerSettings(claim_wait_ms=200, shutdown_grace_s=1),
    )

    @worker.handler("cli_echo")
    async def echo(job: JobContext) -> dict[str, Any]:
        await asyncio.sleep(0.3)  # long enough for watch to see it RUNNING
        return {"echo": job.json()}

    @worker.handler("cli_broken")
    async def broken(job: JobContext) -> None:
        raise PermanentError("cannot be done")

    await worker.start()
    yield worker
    await worker.stop(grace_s=0)


async def test_watch_follows_a_job_to_completion(target: str, worker: Worker) -> None:
    # Due in 3 s: the watch must start (a new process) while the job is still pending.
    submitted = await run_cli_async(
        target, "--json", "submit", "cli_echo", '{"x": 1}', "--in", "3s"
    )
    job_id = submitted.json()["id"]
    watched = await run_cli_async(target, "--json", "watch", job_id, "--timeout", "20s")
    assert watched.code == 0, watched
    states = watched.json_lines()
    statuses = [state["status"] for state in states]
    assert statuses[0] == "pending"
    assert "running" in statuses
    assert states[-1]["status"] == "completed"
    assert json.loads(states[-1]["result"]) == {"echo": {"x": 1}}

    human = await run_cli_async(target, "watch", job_id)
    assert human.code == 0
    assert "COMPLETED" in human.stdout
    assert '{"echo":{"x":1}}' in human.stdout


async def test_submit_wait_exits_9_when_the_job_fails(target: str, worker: Worker) -> None:
    result = await run_cli_async(target, "submit", "cli_broken", "--wait", "--wait-timeout", "20s")
    assert result.code == 9, result
    assert "FAILED" in result.stdout
    assert "cannot be done" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["submit", "not valid!"], 2, "type"),
        (["submit", "t", "--in", "5x"], 2, "--in"),
        (["submit", "t", "--at", "tomorrow"], 2, "--at"),
        (["submit", "t", "--at", "1", "--in", "1s"], 2, "not both"),
        (["submit", "t", "--max-attempts", "0"], 2, "--max-attempts"),
        (["submit"], 2, "TYPE"),
        (["list", "--status", "sleeping"], 2, "--status"),
        (["frobnicate"], 2, "frobnicate"),
        (["get", "not-an-id"], 2, "id"),
        (["get", MISSING_ID], 3, "not found"),
        (["cancel", MISSING_ID], 3, "not found"),
        (["watch", MISSING_ID], 3, "not found"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    target: str, args: list[str], code: int, fragment: str
) -> None:
    assert_one_line_error(run_cli(target, *args), code, fragment)


def test_watch_timeout_exits_8(target: str) -> None:
    job_id = run_cli(target, "--json", "submit", "cli_never").json()["id"]
    result = run_cli(target, "watch", job_id, "--timeout", "300ms")
    assert_one_line_error(result, 8, "did not finish")
    assert "PENDING" in result.stdout


def test_an_unreachable_server_exits_5() -> None:
    result = run_cli(f"127.0.0.1:{free_port()}", "--timeout-s", "1", "stats")
    assert_one_line_error(result, 5, "unavailable")


def test_the_server_comes_from_the_environment(target: str) -> None:
    env = environment() | {"JOBQUEUE_SERVER": target}
    done = subprocess.run(
        [str(JOBQUEUE), "--json", "stats"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "total" in json.loads(done.stdout)
