"""What the ``jobqueue`` console script shows of text other clients sent, its exit codes'
help, and its status filters, against a real ``jobqueue-server`` process.

Text a client or a handler sent (payloads, headers, errors, types) reaches an
operator's terminal: its control characters must be shown escaped, never
obeyed, and ``[...]`` must not be read as rich markup.
"""

from __future__ import annotations

import grpc
import pytest

from jobqueue.client import JobClient
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from mpataki.jobqueue.v1 import worker_pb2_grpc as wpb_grpc
from tests.client.test_cli import assert_one_line_error, run_cli

pytestmark = pytest.mark.integration

PAYLOAD = "\x1b]0;owned\x07 [red]not markup[/red]"
HEADER = "\x1b[2Jcleared"
ERROR = "boom\x1b[31m\r\nsecond line\x9b"


def _failed_job(target: str, job_type: str) -> str:
    """A job enqueued with control characters in its payload and headers, failed with more."""
    with JobClient(target=target) as client:
        job = client.enqueue(job_type, PAYLOAD.encode(), headers={"note": HEADER})
    with grpc.insecure_channel(target) as channel:
        workers = wpb_grpc.WorkerServiceStub(channel)
        claimed = workers.ClaimJobs(
            wpb.ClaimJobsRequest(types=[job_type], max_jobs=1, lease_ms=60_000, wait_ms=5_000),
            timeout=10,
        )
        (lease,) = claimed.leases
        settled = workers.SettleJobs(
            wpb.SettleJobsRequest(
                outcomes=[
                    wpb.Outcome(
                        job_id=job.id,
                        token=lease.token,
                        kind=wpb.OUTCOME_KIND_FAIL,
                        error=ERROR,
                    )
                ]
            ),
            timeout=10,
        )
    assert list(settled.accepted) == [True]
    return job.id


def _assert_nothing_obeyed(text: str) -> None:
    assert not any(0x00 <= ord(c) < 0x20 and c != "\n" for c in text), repr(text)
    assert not any(0x7F <= ord(c) <= 0x9F for c in text), repr(text)


def test_control_characters_a_client_sent_are_shown_escaped(target: str) -> None:
    job_id = _failed_job(target, "cli_escape")
    shown = run_cli(target, "get", job_id)
    assert shown.code == 0, shown
    _assert_nothing_obeyed(shown.stdout)
    assert "\\x1b]0;owned\\x07 [red]not markup[/red]" in shown.stdout
    assert "header note" in shown.stdout
    assert "\\x1b[2Jcleared" in shown.stdout
    assert "boom\\x1b[31m\\x0d\\x0asecond line\\x9b" in shown.stdout
    for args in (["list", "--type", "cli_escape"], ["watch", job_id], ["stats"]):
        result = run_cli(target, *args)
        assert result.code in (0, 9), result
        _assert_nothing_obeyed(result.stdout)
    assert "error: boom\\x1b[31m" in run_cli(target, "watch", job_id).stdout
    # JSON keeps the exact text: json.dumps escapes control characters itself.
    as_json = run_cli(target, "--json", "get", job_id)
    _assert_nothing_obeyed(as_json.stdout)
    assert as_json.json()["last_error"] == ERROR


def test_a_server_error_quoting_client_text_is_escaped_too(target: str) -> None:
    result = run_cli(target, "pause", "bad\x1b[2Jtype")
    assert_one_line_error(result, 2)
    _assert_nothing_obeyed(result.stderr)


def test_workers_show_a_dash_for_a_start_time_never_given(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        wpb_grpc.WorkerServiceStub(channel).Heartbeat(
            wpb.HeartbeatRequest(
                worker=wpb.WorkerInfo(
                    id="no-start", host="h", pid=1, sdk="s", types=["t"], concurrency=1
                ),
                ttl_ms=60_000,
            ),
            timeout=10,
        )
        try:
            table = run_cli(target, "workers")
            assert table.code == 0, table
            (row,) = [line for line in table.stdout.splitlines() if "no-start" in line]
            cells = row.replace("│", " ").split()
            assert cells[6] == "-", row  # STARTED: no "56 years ago"
            assert cells[8:10] == ["s", "ago"], row  # LAST SEEN is real
        finally:
            wpb_grpc.WorkerServiceStub(channel).Heartbeat(
                wpb.HeartbeatRequest(worker=wpb.WorkerInfo(id="no-start"), stopping=True),
                timeout=10,
            )


def test_exit_code_4_is_described_as_the_wrong_state_for_the_action(target: str) -> None:
    helped = run_cli(None, "--help")
    assert "4  job in the wrong state for the action (cancel, retry, delete)" in helped.stdout
    assert "already finished" not in helped.stdout
    job_id = run_cli(target, "--json", "submit", "cli_wrong_state").json()["id"]
    assert run_cli(target, "retry", job_id).code == 4
    assert run_cli(target, "delete", job_id).code == 4


def test_bulk_and_purge_take_scheduled_as_list_and_stats_do(target: str) -> None:
    def submitted(*args: str) -> str:
        return str(run_cli(target, "--json", "submit", "cli_split", *args).json()["id"])

    now = [submitted(), submitted()]
    later = [submitted("--in", "1h"), submitted("--in", "2h")]

    def ids(status: str) -> list[str]:
        args = ["--json", "list", "--type", "cli_split", "--status", status, "--limit", "0"]
        return sorted(job["id"] for job in run_cli(target, *args).json_lines())

    assert ids("scheduled") == sorted(later)
    # Only a cancel changes a PENDING job: retry and delete count the matches.
    retried = run_cli(
        target, "--json", "bulk", "retry", "--type", "cli_split", "--status", "pending"
    )
    assert retried.json() == {"action": "retry", "matched": 2, "changed": 0, "calls": 0}
    purged = run_cli(
        target, "--json", "purge", "--type", "cli_split", "--status", "scheduled", "--yes"
    )
    assert purged.json() == {"action": "delete", "matched": 2, "changed": 0, "calls": 0}
    recent = ["--type", "cli_split", "--status", "scheduled", "--older-than", "1h", "--yes"]
    kept = run_cli(target, "--json", "bulk", "cancel", *recent)
    assert kept.json()["matched"] == 0  # updated just now
    cancelled = run_cli(
        target, "--json", "bulk", "cancel", "--type", "cli_split", "--status", "SCHEDULED", "--yes"
    )
    assert cancelled.code == 0, cancelled
    assert cancelled.json() == {"action": "cancel", "matched": 2, "changed": 2, "calls": 2}
    assert ids("scheduled") == []
    assert ids("pending") == sorted(now)  # due now: not scheduled, untouched
    assert ids("cancelled") == sorted(later)
    shown = run_cli(target, "bulk", "cancel", "--type", "cli_split", "--status", "pending", "--yes")
    assert "cancelled 2 of 2 matching jobs" in shown.stdout
    assert ids("pending") == []


def test_a_worker_target_naming_no_module_is_a_usage_error() -> None:
    result = run_cli(None, "worker", "nosuchmod:worker")
    assert result.code == 2, result
    assert "No module named 'nosuchmod'" in result.stderr
    assert "Traceback" not in result.stderr
