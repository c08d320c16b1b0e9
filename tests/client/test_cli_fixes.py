"""The ``jobqueue`` console script where new users tripped (issue 16), against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from jobqueue.client import JobClient, JobSpec
from jobqueue.client._channel import split_target
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from mpataki.jobqueue.v1 import worker_pb2_grpc as wpb_grpc
from tests.client.test_cli import JOBQUEUE, assert_one_line_error, environment, run_cli

pytestmark = pytest.mark.integration


def listed(target: str, job_type: str, *status: str) -> list[dict[str, object]]:
    args = ["--json", "list", "--type", job_type, "--limit", "0"]
    if status:
        args += ["--status", *status]
    result = run_cli(target, *args)
    assert result.code == 0, result
    return result.json_lines()


def test_a_bad_line_601_stops_the_whole_file(target: str, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    good = [json.dumps({"type": "cli_line601", "payload": n}) for n in range(600)]
    jobs.write_text("\n".join([*good, '{"type": "not valid!"}', *good[:5]]) + "\n")
    result = run_cli(target, "submit", "--file", str(jobs))
    assert_one_line_error(result, 2, "jobs.jsonl:601", "type")
    assert listed(target, "cli_line601") == []


def test_running_the_same_file_again_stores_nothing_twice(target: str, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"type": "cli_rerun", "payload": "same"}) + "\n" * 2) * 7)
    first = run_cli(target, "--json", "submit", "--file", str(jobs), "--batch-size", "3")
    assert first.code == 0, first
    again = run_cli(
        target, "--json", "submit", "--file", "-", "--batch-size", "3", stdin=jobs.read_text()
    )
    assert again.code == 0, again
    ids = [job["id"] for job in first.json_lines()]
    assert len(set(ids)) == 7
    assert [job["id"] for job in again.json_lines()] == ids
    assert len(listed(target, "cli_rerun")) == 7


def test_a_batch_the_server_rejects_says_what_was_stored(target: str, tmp_path: Path) -> None:
    # The server's payload limit is its own (1 MiB by default): only it can refuse this line.
    jobs = tmp_path / "big.jsonl"
    lines = [json.dumps({"type": "cli_big", "payload": n}) for n in range(4)]
    lines.append(json.dumps({"type": "cli_big", "payload": "x" * (1024 * 1024 + 1)}))
    jobs.write_text("\n".join(lines) + "\n")
    result = run_cli(target, "submit", "--file", str(jobs), "--batch-size", "2")
    assert_one_line_error(result, 2, "big.jsonl:5", "4 jobs", "not stored twice")
    jobs.write_text("\n".join(lines[:4]) + "\n" + json.dumps({"type": "cli_big"}) + "\n")
    assert run_cli(target, "submit", "--file", str(jobs), "--batch-size", "2").code == 0
    assert len(listed(target, "cli_big")) == 5


def test_json_is_accepted_after_the_command_too(target: str) -> None:
    job = run_cli(target, "submit", "cli_json_after", "x", "--json").json()
    assert job["type"] == "cli_json_after"
    assert run_cli(target, "get", job["id"], "--json").json()["id"] == job["id"]
    assert "total" in run_cli(target, "stats", "--json").json()
    assert [row["id"] for row in listed(target, "cli_json_after")] == [job["id"]]


def test_submit_wait_prints_the_job_id_first(target: str) -> None:
    result = run_cli(target, "submit", "cli_wait_id", "--wait", "--wait-timeout", "300ms")
    assert result.code == 8, result
    first = result.stdout.splitlines()[0]
    (job,) = listed(target, "cli_wait_id")
    assert first == f"submitted job {job['id']}"


def test_cancelling_a_running_job_says_cancel_requested(target: str) -> None:
    job_id = run_cli(target, "--json", "submit", "cli_running").json()["id"]
    with grpc.insecure_channel(target) as channel:
        claimed = wpb_grpc.WorkerServiceStub(channel).ClaimJobs(
            wpb.ClaimJobsRequest(types=["cli_running"], max_jobs=1, lease_ms=60_000, wait_ms=5_000),
            timeout=10,
        )
    assert [lease.job.id for lease in claimed.leases] == [job_id]
    result = run_cli(target, "cancel", job_id)
    assert result.code == 0, result
    assert result.stdout.startswith(f"cancel requested: job {job_id} is running")
    assert "RUNNING" in result.stdout
    assert "requested: its worker was told to stop" in run_cli(target, "get", job_id).stdout


def test_scheduled_means_the_same_in_stats_get_and_list(target: str) -> None:
    later = run_cli(target, "--json", "submit", "cli_sched", "--in", "1h").json()
    now = run_cli(target, "--json", "submit", "cli_sched").json()
    assert [job["id"] for job in listed(target, "cli_sched", "scheduled")] == [later["id"]]
    assert [job["id"] for job in listed(target, "cli_sched", "pending")] == [now["id"]]
    assert (later["status"], later["scheduled"]) == ("pending", True)
    assert (now["status"], now["scheduled"]) == ("pending", False)
    assert "SCHEDULED" in run_cli(target, "get", later["id"]).stdout
    assert "PENDING" in run_cli(target, "get", now["id"]).stdout
    table = run_cli(target, "list", "--type", "cli_sched").stdout
    assert table.count("SCHEDULED") == 1
    assert table.count("PENDING") == 1
    rows = {row["type"]: row for row in run_cli(target, "stats", "--json").json()["types"]}
    assert (rows["cli_sched"]["scheduled"], rows["cli_sched"]["pending"]) == (1, 1)
    assert "SCHEDULED" in run_cli(target, "stats").stdout


def test_server_addresses_as_people_write_them(target: str) -> None:
    port = target.rsplit(":", 1)[1]
    assert run_cli(f"http://127.0.0.1:{port}", "stats").code == 0
    # TLS asked of a plaintext server: the handshake fails, the server is unreachable.
    refused = run_cli(f"https://127.0.0.1:{port}", "--timeout-s", "1", "stats")
    assert_one_line_error(refused, 5, "unavailable")
    assert split_target("localhost") == ("localhost:8080", None)
    assert split_target("http://localhost") == ("localhost:8080", False)
    assert split_target("https://jobs.example") == ("jobs.example:443", True)
    assert split_target("[::1]") == ("[::1]:8080", None)
    assert split_target("dns:///jobs.example:9000") == ("dns:///jobs.example:9000", None)


def test_bare_localhost_dials_port_8080() -> None:
    with JobClient(target="localhost") as client:
        assert client.target == "localhost:8080"
    # Whether or not something listens on 8080 here, nothing dials gRPC's default 443.
    result = run_cli("localhost", "--timeout-s", "1", "stats")
    if result.code != 0:
        assert "8080" in result.stderr, result
    assert "443" not in result.stderr


def test_a_payload_from_stdin_or_a_file(target: str, tmp_path: Path) -> None:
    piped = run_cli(target, "--json", "submit", "cli_payload", "-", stdin='{"from": "stdin"}')
    assert piped.json()["payload"] == '{"from": "stdin"}'
    document = tmp_path / "payload.json"
    document.write_bytes(b'{"from": "file"}\n')
    from_file = run_cli(target, "--json", "submit", "cli_payload", f"@{document}")
    assert from_file.json()["payload"] == '{"from": "file"}\n'
    missing = run_cli(target, "submit", "cli_payload", f"@{tmp_path / 'absent.json'}")
    assert_one_line_error(missing, 1, "absent.json")


def test_a_listing_of_5000_jobs(target: str) -> None:
    with JobClient(target=target) as client:
        for start in range(0, 5_000, 1_000):
            client.enqueue_many([JobSpec("cli_many", str(n)) for n in range(start, start + 1_000)])
    result = run_cli(target, "list", "--type", "cli_many", "--limit", "0")
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "STATUS", "ATTEMPTS", "RUN", "AT", "UPDATED"]
    assert len(lines) == 5_002
    assert lines[-1] == "5000 jobs"


def test_the_worker_command_without_the_worker_package() -> None:
    # The package made unimportable, as in an environment without jobqueue-worker.
    code = (
        "import sys; sys.modules['jobqueue.worker'] = None; "
        "from jobqueue.client.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", code, "worker"]
    missing = subprocess.run(
        [*command, "app:worker"], capture_output=True, text=True, check=False, env=environment()
    )
    assert missing.returncode == 1
    assert missing.stderr.splitlines() == [
        "jobqueue: error: the worker command needs the jobqueue-worker package "
        "(install jobqueue-worker next to jobqueue-client)"
    ]
    helped = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, check=False, env=environment()
    )
    assert helped.returncode == 0
    assert "MODULE:NAME" in helped.stdout
    assert "needs the jobqueue-worker package" in helped.stdout


def test_the_worker_command_runs_the_worker_sdks_command(target: str, tmp_path: Path) -> None:
    pytest.importorskip("jobqueue.worker", reason="jobqueue-worker is not installed")
    from jobqueue import worker as worker_sdk

    if not hasattr(worker_sdk, "run_command"):
        pytest.skip("jobqueue.worker.run_command is not there yet")
    helped = subprocess.run(
        [str(JOBQUEUE), "worker", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env=environment(),
        timeout=60,
    )
    assert helped.returncode == 0, helped
    assert "--concurrency" in helped.stdout
    (tmp_path / "cli_worker_app.py").write_text(
        "from jobqueue.worker import Worker\n"
        "worker = Worker()\n"
        "@worker.handler('cli_worker_cmd')\n"
        "async def echo(job):\n"
        "    return {'echo': job.json()}\n"
    )
    job_id = run_cli(target, "--json", "submit", "cli_worker_cmd", '{"n": 1}').json()["id"]
    env = environment() | {"PYTHONPATH": str(tmp_path)}
    process = subprocess.Popen(
        # The global --server reaches the worker command too.
        [str(JOBQUEUE), "--server", target, "worker", "cli_worker_app:worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        done = run_cli(target, "--json", "watch", job_id, "--timeout", "30s")
        assert done.code == 0, done
        assert json.loads(done.json_lines()[-1]["result"]) == {"echo": {"n": 1}}
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output


def test_the_old_timeout_flag_still_works_and_says_so(target: str) -> None:
    result = run_cli(target, "--timeout", "5", "--json", "stats")
    assert result.code == 0, result
    assert "total" in result.json()
    assert result.stderr == "jobqueue: warning: --timeout is deprecated; use --timeout-s\n"
    assert "--timeout-s" in run_cli(None, "--help").stdout
