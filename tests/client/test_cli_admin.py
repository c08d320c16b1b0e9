"""`jobqueue retry`, `delete`, `purge` and `bulk`, run as the console script against a server."""

from __future__ import annotations

import pytest

from jobqueue.client import JobClient, JobNotFound, JobSpec, JobStatus
from tests.client.test_cli import MISSING_ID, run_cli

pytestmark = pytest.mark.integration


def cancelled_jobs(target: str, job_type: str, count: int) -> list[str]:
    """``count`` jobs of ``job_type``, each cancelled (no worker serves these types)."""
    with JobClient(target=target, timeout_s=5) as client:
        jobs = client.enqueue_many([JobSpec(job_type, {"n": n}) for n in range(count)])
        for job in jobs:
            client.cancel(job.id)
        return [job.id for job in jobs]


def statuses(target: str, ids: list[str]) -> list[JobStatus | None]:
    with JobClient(target=target, timeout_s=5) as client:
        found: list[JobStatus | None] = []
        for job_id in ids:
            try:
                found.append(client.get(job_id).status)
            except JobNotFound:
                found.append(None)
        return found


def test_retry_and_delete_one_job(target: str) -> None:
    (job_id,) = cancelled_jobs(target, "cli_adm_one", 1)
    retried = run_cli(target, "--json", "retry", job_id)
    assert retried.code == 0, retried
    assert retried.json()["status"] == "pending"
    again = run_cli(target, "retry", job_id)
    assert again.code == 4, again
    assert "PENDING" in again.stderr
    refused = run_cli(target, "delete", job_id)
    assert refused.code == 4, refused
    assert "cancel it first" in refused.stderr
    assert run_cli(target, "cancel", job_id).code == 0
    deleted = run_cli(target, "delete", job_id)
    assert deleted.code == 0, deleted
    assert "deleted job" in deleted.stdout
    assert run_cli(target, "get", job_id).code == 3
    assert run_cli(target, "retry", MISSING_ID).code == 3
    assert run_cli(target, "delete", "not-an-id").code == 2


def test_bulk_retry_loops_pages_and_prints_counts(target: str) -> None:
    ids = cancelled_jobs(target, "cli_adm_bulk", 5)
    result = run_cli(
        target,
        "--json",
        "bulk",
        "retry",
        "--type",
        "cli_adm_bulk",
        "--status",
        "cancelled",
        "--limit",
        "2",
    )
    assert result.code == 0, result
    assert result.json() == {"action": "retry", "matched": 5, "changed": 5, "calls": 3}
    assert statuses(target, ids) == [JobStatus.PENDING] * 5
    # Pending jobs named by the filter are examined, not retried.
    plain = run_cli(target, "bulk", "retry", "--type", "cli_adm_bulk", "--status", "pending")
    assert plain.code == 0, plain
    assert "retried 0 of 5 matching jobs" in plain.stdout


def test_destructive_bulk_needs_yes_off_a_terminal(target: str) -> None:
    ids = cancelled_jobs(target, "cli_adm_purge", 3)
    refused = run_cli(target, "purge", "--type", "cli_adm_purge")
    assert refused.code == 2, refused
    assert "--yes" in refused.stderr
    refused = run_cli(target, "bulk", "cancel", "--type", "cli_adm_purge")
    assert refused.code == 2, refused
    assert statuses(target, ids) == [JobStatus.CANCELLED] * 3
    # Updated just now: a purge of what is older than a week keeps them.
    kept = run_cli(target, "purge", "--type", "cli_adm_purge", "--older-than", "7d", "--yes")
    assert kept.code == 0, kept
    assert "deleted 0 of 0 matching jobs" in kept.stdout
    purged = run_cli(target, "--json", "purge", "--type", "cli_adm_purge", "--yes")
    assert purged.code == 0, purged
    assert purged.json()["changed"] == 3
    assert statuses(target, ids) == [None] * 3


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["bulk", "explode"], "explode"),
        (["bulk", "retry", "--older-than", "5x"], "--older-than"),
        (["bulk", "retry", "--status", "later"], "--status"),
        (["bulk", "retry", "--limit", "10001"], "--limit"),
        (["purge", "--type", "not valid!", "--yes"], "type"),
    ],
)
def test_bad_bulk_input_is_usage_error(target: str, args: list[str], fragment: str) -> None:
    result = run_cli(target, *args)
    assert result.code == 2, result
    assert fragment in result.stderr
