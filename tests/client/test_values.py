"""The pure parts: payload encoding, times, durations, jobs files, Job helpers, retry policy."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from jobqueue.client import Job, JobSpec, JobStatus, RetryPolicy
from jobqueue.client._cli_input import BadJobLine, parse_duration, parse_time, read_job_lines
from jobqueue.client._convert import encode_payload, enqueue_request, execution_time_ms


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("2d", 172_800),
        ("1.5h", 5400),
        ("45", 45),
        ("0.5", 0.5),
        (" 10S ", 10),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h 30m", "-3", "1h-30m", "s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(text)


def test_times_are_epoch_ms_or_iso_8601() -> None:
    assert parse_time("1700000000000") == 1_700_000_000_000
    assert parse_time("2030-01-31T09:00:00Z") == datetime(2030, 1, 31, 9, tzinfo=UTC)
    local = parse_time("2030-01-31T09:00")
    assert isinstance(local, datetime)
    assert local.tzinfo is None  # naive: local time, as datetime.timestamp reads it
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("tomorrow")


def test_execution_times() -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    assert execution_time_ms(when, None) == 1_893_456_000_000
    assert execution_time_ms(5, None) == 5
    assert execution_time_ms(None, 1.5, now_ms=1_000) == 2_500
    assert execution_time_ms(None, timedelta(minutes=1), now_ms=0) == 60_000
    assert execution_time_ms(None, None) is None
    with pytest.raises(ValueError, match="not both"):
        execution_time_ms(1, 1)
    with pytest.raises(ValueError, match="negative"):
        execution_time_ms(None, -1)
    with pytest.raises(TypeError):
        execution_time_ms(True, None)


def test_payload_encoding() -> None:
    assert encode_payload(bytearray(b"ab")) == b"ab"
    assert encode_payload({"é": [1, None, True]}) == '{"é":[1,null,true]}'.encode()
    assert encode_payload("") == b""


def test_requests_carry_a_generated_key_unless_given() -> None:
    generated = enqueue_request(JobSpec("t"))
    assert generated.HasField("idempotency_key")
    assert len(generated.idempotency_key) == 36
    assert not generated.HasField("execution_time_ms")
    assert not generated.HasField("max_attempts")
    given = enqueue_request(JobSpec("t", idempotency_key="mine", max_attempts=0, run_at=0))
    assert given.idempotency_key == "mine"
    # Zero is a value, not "unset": the server must see it (and judge it).
    assert given.HasField("max_attempts")
    assert given.HasField("execution_time_ms")


def test_a_jobs_file_is_read_line_by_line() -> None:
    lines = [
        '{"type": "a", "payload": {"n": 1}, "in": "30s", "max_attempts": 2}\n',
        "\n",
        '{"type": "b", "payload": "text", "at": "2030-01-01T00:00:00Z", "key": "k"}\n',
        '{"type": "c", "run_at": 5, "idempotency_key": "k2", "delay": null}\n',
    ]
    specs = list(read_job_lines(lines, source="jobs.jsonl"))
    assert [line.number for line in specs] == [1, 3, 4]
    assert specs[0].text == lines[0].rstrip("\n")
    first, second, third = (line.spec for line in specs)
    assert first == JobSpec("a", {"n": 1}, delay_s=30.0, max_attempts=2)
    assert second == JobSpec(
        "b", "text", run_at=datetime(2030, 1, 1, tzinfo=UTC), idempotency_key="k"
    )
    assert third == JobSpec("c", run_at=5, idempotency_key="k2")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[1, 2]", "JSON object"),
        ("{not json", "jobs.jsonl:1"),
        ('{"payload": 1}', "'type' is required"),
        ('{"type": 5}', "'type' is required"),
        ('{"type": "a", "tpye": "b"}', "unknown field 'tpye'"),
        ('{"type": "a", "in": "1s", "delay": 2}', "given twice"),
        ('{"type": "a", "in": "soon"}', "duration"),
        ('{"type": "a", "at": true}', "run_at"),
        ('{"type": "a", "at": "2030-01-01", "in": "1s"}', "not both"),
        ('{"type": "a", "max_attempts": "3"}', "max_attempts"),
        ('{"type": "a", "key": 7}', "idempotency_key"),
    ],
)
def test_a_bad_line_names_itself(line: str, problem: str) -> None:
    with pytest.raises(BadJobLine, match=r"jobs\.jsonl:1") as caught:
        list(read_job_lines([line], source="jobs.jsonl"))
    assert problem in str(caught.value)


def make_job(**changes: object) -> Job:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    fields: dict[str, object] = {
        "id": "01900000-0000-7000-8000-000000000000",
        "type": "t",
        "payload": b"",
        "status": JobStatus.PENDING,
        "run_at": now,
        "created_at": now,
        "updated_at": now,
        "attempts": 0,
    }
    fields.update(changes)
    return Job(**fields)  # type: ignore[arg-type]


def test_job_helpers() -> None:
    job = make_job(payload=b'{"a":1}', result=b"[1,2]", status=JobStatus.COMPLETED)
    assert job.payload_json() == {"a": 1}
    assert job.json() == [1, 2]
    assert job.is_finished
    assert make_job().json() is None
    assert make_job().payload_json() is None
    with pytest.raises(ValueError, match="Expecting value"):
        make_job(result=b"not json").json()
    as_dict = make_job(payload=b"\xff\xfeok").to_dict()
    assert as_dict["payload"] == "\\xff\\xfeok"
    assert as_dict["status"] == "pending"
    assert as_dict["run_at"] == "2030-01-01T00:00:00+00:00"
    with pytest.raises(AttributeError):
        job.status = JobStatus.FAILED  # type: ignore[misc]
    assert {status.is_terminal for status in JobStatus} == {True, False}
    assert [s for s in JobStatus if not s.is_terminal] == [JobStatus.PENDING, JobStatus.RUNNING]


def test_retry_backoff_grows_jitters_and_is_capped() -> None:
    random.seed(7)
    policy = RetryPolicy(max_retries=10, initial_backoff_s=0.1, max_backoff_s=1.0, multiplier=2)
    for retry, bound in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        pauses = [policy.backoff_s(retry) for _ in range(200)]
        assert all(0 <= pause <= bound for pause in pauses)
        assert max(pauses) > bound * 0.8  # full jitter spreads up to the bound
    for bad in (
        {"max_retries": -1},
        {"initial_backoff_s": -1.0},
        {"multiplier": 0.5},
    ):
        with pytest.raises(ValueError, match="must"):
            RetryPolicy(**bad)
