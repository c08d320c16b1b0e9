"""``jobqueue schedules ...``: the console script against a real ``jobqueue-server`` process."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.client.test_cli import MISSING_ID, assert_one_line_error, run_cli

pytestmark = pytest.mark.integration


def unique(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}"


def test_create_list_get_pause_resume_trigger_delete_as_json(target: str, tmp_path: Path) -> None:
    job_type = unique("cli.sched")
    payload = tmp_path / "payload.json"
    payload.write_text('{"kind": "daily"}')
    created = run_cli(
        target,
        "--json",
        "schedules",
        "create",
        "nightly",
        job_type,
        f"@{payload}",
        "--cron",
        "30 2 * * *",
        "--tz",
        "Europe/Paris",
        "--overlap",
        "buffer_one",
        "--catchup",
        "5m",
        "--header",
        "tenant=acme",
        "--max-attempts",
        "3",
        "--priority",
        "4",
        "--key",
        f"create-{job_type}",
    )
    assert created.code == 0, created
    schedule = created.json()
    schedule_id = schedule["id"]
    assert schedule["name"] == "nightly"
    assert (schedule["cron"], schedule["interval_s"], schedule["time_zone"]) == (
        "30 2 * * *",
        None,
        "Europe/Paris",
    )
    assert schedule["template"] == {
        "type": job_type,
        "payload": '{"kind": "daily"}',
        "headers": {"tenant": "acme"},
        "max_attempts": 3,
        "priority": 4,
        "limit_key": None,
    }
    assert (schedule["overlap"], schedule["catchup_window_s"]) == ("buffer_one", 300.0)
    assert schedule["paused"] is False

    listed = run_cli(target, "schedules", "list", "--json")
    assert listed.code == 0, listed
    assert schedule_id in {row["id"] for row in listed.json_lines()}

    shown = run_cli(target, "schedules", "get", schedule_id, "--json").json()
    # The servers' firing loop may have planned the next tick (02:30 Paris) since.
    if shown["next_tick_at"] is not None:
        local = datetime.fromisoformat(shown["next_tick_at"]).astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (2, 30)
    assert {**shown, "next_tick_at": None} == {**schedule, "next_tick_at": None}

    paused = run_cli(target, "--json", "schedules", "pause", schedule_id)
    assert paused.json()["paused"] is True
    assert paused.json()["next_tick_at"] is None
    assert run_cli(target, "--json", "schedules", "resume", schedule_id).json()["paused"] is False

    # The same create again with its key: the first schedule, nothing new.
    again = run_cli(
        target, "--json", "schedules", "create", "other", job_type, "--every", "1m", "--key",
        f"create-{job_type}",
    )  # fmt: skip
    assert again.json()["id"] == schedule_id
    rows = run_cli(target, "--json", "schedules", "list").json_lines()
    assert [row["id"] for row in rows if row["template"]["type"] == job_type] == [schedule_id]

    triggered = run_cli(target, "--json", "schedules", "trigger", schedule_id, "--key", "t-1")
    assert triggered.code == 0, triggered
    job_id = triggered.json()["job_id"]
    job = run_cli(target, "--json", "get", job_id).json()
    assert (job["type"], job["payload"], job["max_attempts"], job["priority"]) == (
        job_type,
        '{"kind": "daily"}',
        3,
        4,
    )
    retried = run_cli(target, "--json", "schedules", "trigger", schedule_id, "--key", "t-1")
    assert retried.json()["job_id"] == job_id

    deleted = run_cli(target, "--json", "schedules", "delete", schedule_id)
    assert deleted.json() == {"id": schedule_id, "deleted": True}
    listed = run_cli(target, "--json", "schedules", "list")
    assert schedule_id not in {row["id"] for row in listed.json_lines()}


def test_tables_for_people(target: str) -> None:
    job_type = unique("cli.table")
    created = run_cli(
        target, "schedules", "create", "heartbeat", job_type, "--every", "1h", "--paused"
    )
    assert created.code == 0, created
    for text in ("heartbeat", job_type, "every 1h", "PAUSED", "0 fired"):
        assert text in created.stdout
    listed_json = run_cli(target, "--json", "schedules", "list").json_lines()
    [schedule_id] = [row["id"] for row in listed_json if row["template"]["type"] == job_type]
    listed = run_cli(target, "schedules", "list")
    assert listed.code == 0, listed
    header = listed.stdout.splitlines()[0].split()
    assert header[:4] == ["ID", "NAME", "TYPE", "RULE"]
    assert any(schedule_id in line and "PAUSED" in line for line in listed.stdout.splitlines())
    assert "schedule" in listed.stdout.splitlines()[-1]

    resumed = run_cli(target, "schedules", "resume", schedule_id)
    assert "ACTIVE" in resumed.stdout
    triggered = run_cli(target, "schedules", "trigger", schedule_id)
    assert triggered.code == 0
    assert triggered.stdout.startswith(f"triggered schedule {schedule_id}: job ")
    deleted = run_cli(target, "schedules", "delete", schedule_id)
    assert deleted.stdout.strip() == f"deleted schedule {schedule_id}"


@pytest.mark.parametrize("command", ["get", "pause", "resume", "trigger", "delete"])
def test_a_missing_schedule_exits_3(target: str, command: str) -> None:
    result = run_cli(target, "schedules", command, MISSING_ID)
    assert_one_line_error(result, 3, MISSING_ID, "not found")


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--cron", "61 * * * *"], "error: --cron: invalid cron expression"),
        (["--every", "500ms"], "error: --every: 1s to 366d"),
        (["--every", "0s"], "error: --every: 1s to 366d"),
        (["--cron", "* * * * *", "--tz", "Mars/Olympus_Mons"], "error: --tz:"),
        (["--cron", "30 2 * * *", "--tz", "localtime"], "error: --tz:"),
        (["--cron", "* * * * * *"], "error: --cron: give five fields"),
        (["--every", "1m", "--catchup", "8d"], "error: --catchup: 1s to 7d"),
    ],
)
def test_the_servers_refusal_exits_2_naming_the_flag(
    target: str, options: list[str], fragment: str
) -> None:
    job_type = unique("cli.bad")
    result = run_cli(target, "schedules", "create", "bad", job_type, *options)
    assert_one_line_error(result, 2, fragment)
    listed = run_cli(target, "--json", "schedules", "list").json_lines()
    assert job_type not in {row["template"]["type"] for row in listed}


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ([], "exactly one of --cron and --every"),
        (["--cron", "* * * * *", "--every", "1m"], "exactly one of --cron and --every"),
        (["--every", "soon"], "not a duration"),
        (["--every", "1m", "--overlap", "sometimes"], "--overlap"),
        (["--every", "1m", "--header", "novalue"], "KEY=VALUE"),
    ],
)
def test_bad_options_are_usage_errors(target: str, options: list[str], fragment: str) -> None:
    result = run_cli(target, "schedules", "create", "bad", "cli.usage", *options)
    assert_one_line_error(result, 2, fragment)


def test_help_lists_the_schedules_commands() -> None:
    result = run_cli(None, "schedules", "--help")
    assert result.code == 0
    for command in ("create", "list", "get", "pause", "resume", "trigger", "delete"):
        assert command in result.stdout
