"""The worker command: ``run_command`` and the ``jobqueue-worker`` console script.

The console script runs as a real process against a real Redis and against
a real server on a loopback port, and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobqueue.domain import Job, JobService, JobStatus, JobStore, SystemClock, UuidV7Generator
from jobqueue.memory import MemoryJobStore
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue.worker import Worker, run_command
from jobqueue.worker._command import _parser, load_worker

from ._waits import finished
from .conftest import start_test_server

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("jobqueue-worker")
APP = "tests.worker._command_app"


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--concurrency", "--redis-url", "--server", "--token", "--tls", "--log-format"):
        assert flag in out


@pytest.mark.parametrize(
    ("argv", "status", "says"),
    [
        ([], 2, "TARGET"),
        ([f"{APP}:worker", "--redis-url", "redis://x", "--server", "h:1"], 2, "not both"),
        ([f"{APP}:worker", "--log-format", "xml"], 2, "invalid choice"),
        (["tests.worker.no_such_module:worker"], 2, "No module named"),
        (["nosuchmod:worker"], 2, "No module named 'nosuchmod'"),
        ([f"{APP}:not_a_worker"], 2, "is int, not a jobqueue Worker"),
        ([f"{APP}:missing"], 2, "has no attribute 'missing'"),
        # The module exists but imports a package that does not: the environment, not usage.
        (f"{APP}_broken:worker".split(), 1, "No module named 'no_such_dependency'"),
        ([f"{APP}:worker", "--shutdown-grace-s", "-1"], 2, "must not be negative"),
        ([f"{APP}:worker", "--concurrency", "0"], 2, "not a positive whole number"),
    ],
)
def test_usage_errors_are_one_line_and_a_status(
    argv: list[str], status: int, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(argv) == status
    assert says in capsys.readouterr().err


def test_a_bad_environment_variable_is_one_line_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBQUEUE_CONCURRENCY", "lots")
    assert run_command([f"{APP}:worker"]) == 2
    assert "JOBQUEUE_CONCURRENCY must be a whole number, not 'lots'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value", "choices"),
    [
        ("JOBQUEUE_LOG_LEVEL", "TRACE", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("JOBQUEUE_LOG_FORMAT", "xml", "text, json"),
    ],
)
def test_a_log_variable_outside_its_choices_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    choices: str,
) -> None:
    # Given as the flags' defaults, argparse never checked them: TRACE ended in a
    # traceback after the worker loaded, xml ran with text logs.
    monkeypatch.setenv(name, value)
    assert run_command([f"{APP}:worker"]) == 2
    err = capsys.readouterr().err
    assert f"{name}={value!r}: choose one of {choices}" in err
    assert len(err.strip().splitlines()) == 1


def test_a_log_flag_wins_over_a_bad_variable_and_warn_is_a_level() -> None:
    parser = _parser()
    args = parser.parse_args([f"{APP}:worker", "--log-level", "warn", "--log-format", "JSON"])
    assert (args.log_level, args.log_format) == ("WARNING", "json")
    # The variable is read only for a flag not given (run_command does so after parsing).
    assert parser.parse_args([f"{APP}:worker"]).log_level is None


def test_debug_is_the_workers_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # grpc's and asyncio's loggers at DEBUG wrote lines of their own while idle.
    from jobqueue.worker._command import _configure_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    ours = logging.getLogger("jobqueue")
    try:
        _configure_logging("debug", "text")
        assert logging.getLogger("jobqueue.worker").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("grpc._cython.cygrpc").isEnabledFor(logging.DEBUG)
        assert logging.getLogger("tasks").isEnabledFor(logging.INFO)
        _configure_logging("warning", "json")
        assert not logging.getLogger("jobqueue.worker").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        ours.setLevel(logging.NOTSET)


def test_the_target_may_be_a_worker_a_callable_or_a_module() -> None:
    from tests.worker import _command_app

    assert load_worker(f"{APP}:worker") is _command_app.worker
    assert load_worker(APP) is _command_app.worker  # attr defaults to ``worker``
    made = load_worker(f"{APP}:make_worker")
    assert isinstance(made, Worker)
    assert made.types == ("echo",)


def _start(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    return subprocess.Popen(
        [str(SCRIPT), f"{APP}:worker", "--log-format", "json", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _stop(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        while process.poll() is None:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.02)
    _, err = process.communicate(timeout=5)  # it has exited: this reads and closes the pipe
    lines = err.splitlines()
    assert process.returncode == 0, lines
    return [json.loads(line) for line in lines]


def _reap(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=5)


async def _run_and_check(process: subprocess.Popen[str], store: JobStore, source: str) -> None:
    """Two jobs through the worker process, then SIGTERM; its results and its log."""
    try:
        echo, boom = await _run_jobs(store)
        records = await _stop(process)
    finally:
        _reap(process)
    assert (echo.status, echo.result) == (JobStatus.COMPLETED, b"hi")
    assert (boom.status, boom.last_error) == (JobStatus.FAILED, "PermanentError: no")
    _check_logs(records, boom, source)


async def _run_jobs(store: JobStore) -> tuple[Job, Job]:
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    echo = await service.enqueue("echo", b"hi")
    boom = await service.enqueue("boom")
    return await finished(store, echo.id), await finished(store, boom.id)


def _check_logs(records: list[dict[str, Any]], boom: Job, source: str) -> None:
    started = [r for r in records if r["message"].startswith("worker started")]
    assert len(started) == 1
    assert source in started[0]["message"]
    assert started[0]["job_types"] == ["echo", "boom", "nap"]
    assert started[0]["concurrency"] == 3
    assert started[0]["version"] in started[0]["message"]
    failed = [r for r in records if r.get("job_id") == boom.id]
    assert len(failed) == 1
    message = failed[0]["message"]
    assert f"job {boom.id} (boom, attempt 1 of 1)" in message
    assert message.endswith("PermanentError: no")
    assert "Traceback" in failed[0]["exception"]  # the traceback goes to the log...
    assert [r["message"] for r in records][-1].startswith("worker stopped")


@pytest.mark.integration
@pytest.mark.redis
async def test_the_console_script_runs_a_worker_on_redis(redis_url: str, key_prefix: str) -> None:
    prefix = key_prefix.rstrip(":")
    store = RedisJobStore(RedisStoreSettings(url=redis_url, key_prefix=prefix))
    process = _start("--redis-url", redis_url, "--key-prefix", prefix, "--concurrency", "3")
    try:
        await _run_and_check(process, store, f"redis {redis_url} (key prefix {prefix!r})")
    finally:
        await store.close()


@pytest.mark.integration
async def test_the_console_script_runs_a_worker_through_a_server() -> None:
    store = MemoryJobStore()
    server = await start_test_server(store)
    target = f"127.0.0.1:{server.port}"
    process = _start("--server", target, "--concurrency", "3")
    try:
        await _run_and_check(process, store, f"server {target}")
    finally:
        await server.stop(None)
        await store.close()


def _start_example(env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    return subprocess.Popen(
        [str(SCRIPT.with_name("jobqueue-example-worker"))],
        cwd=ROOT,
        env={**clean, **env},
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.integration
async def test_the_example_worker_runs_through_the_command_as_the_readme_shows() -> None:
    # README: JOBQUEUE_SERVER=localhost:8080 uv run jobqueue-example-worker
    store = MemoryJobStore()
    server = await start_test_server(store)
    target = f"127.0.0.1:{server.port}"
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    process = _start_example({"JOBQUEUE_SERVER": target, "JOBQUEUE_LOG_FORMAT": "json"})
    try:
        job = await service.enqueue("send_email", b'{"to": "ada@example.org"}')
        done = await finished(store, job.id)
        records = await _stop(process)
    finally:
        _reap(process)
        await server.stop(None)
        await store.close()
    assert done.status is JobStatus.COMPLETED
    assert json.loads(done.result or b"") == {"status": "sent", "to": "ada@example.org"}
    started = next(r for r in records if r["message"].startswith("worker started"))
    assert started["source"] == f"server {target}"
    assert started["job_types"] == ["send_email", "flaky", "slow"]


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("JOBQUEUE_CONCURRENCY", "0", "JOBQUEUE_CONCURRENCY: Input should be greater than"),
        ("JOBQUEUE_LOG_FORMAT", "xml", "JOBQUEUE_LOG_FORMAT: Input should be 'text' or 'json'"),
    ],
)
def test_the_example_worker_says_a_bad_setting_in_one_line(
    name: str, value: str, said: str
) -> None:
    # It ended in a 28-line pydantic traceback.
    result = subprocess.run(
        [sys.executable, "-m", "jobqueue_example_worker"],
        cwd=ROOT,
        env={**os.environ, name: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert said in errors[0]
