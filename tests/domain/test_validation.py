from __future__ import annotations

import pytest

from jobqueue.domain import (
    MAX_EPOCH_MS,
    InvalidJob,
    Limits,
    truncate_error,
    validate_execution_time,
    validate_idempotency_key,
    validate_job_id,
    validate_max_attempts,
    validate_payload,
    validate_type,
)


@pytest.mark.parametrize("job_type", ["send_email", "a", "billing.invoice:v2-retry", "x" * 128])
def test_valid_types(job_type: str) -> None:
    assert validate_type(job_type) == job_type


@pytest.mark.parametrize(
    "job_type", ["", "x" * 129, "has space", "slash/y", "{brace}", "star*", "new\nline", "é"]
)
def test_invalid_types(job_type: str) -> None:
    with pytest.raises(InvalidJob) as raised:
        validate_type(job_type)
    assert raised.value.field == "type"


def test_payload_limit_is_configurable() -> None:
    limits = Limits(max_payload_bytes=4)
    assert validate_payload(b"1234", limits) == b"1234"
    with pytest.raises(InvalidJob, match="payload"):
        validate_payload(b"12345", limits)


@pytest.mark.parametrize("value", [-1, MAX_EPOCH_MS + 1, 2**63 - 1])
def test_absurd_times(value: int) -> None:
    with pytest.raises(InvalidJob):
        validate_execution_time(value)


@pytest.mark.parametrize("value", [0, 1_640_000_000_000, MAX_EPOCH_MS])
def test_sane_times(value: int) -> None:
    assert validate_execution_time(value) == value


def test_max_attempts_bounds() -> None:
    limits = Limits()
    assert validate_max_attempts(None, limits) is None
    assert validate_max_attempts(1, limits) == 1
    for bad in (0, -3, limits.max_attempts_ceiling + 1):
        with pytest.raises(InvalidJob):
            validate_max_attempts(bad, limits)


def test_idempotency_key_bounds() -> None:
    assert validate_idempotency_key(None) is None
    assert validate_idempotency_key("k") == "k"
    for bad in ("", "k" * 257):
        with pytest.raises(InvalidJob):
            validate_idempotency_key(bad)


def test_job_ids_are_canonical_uuids() -> None:
    assert (
        validate_job_id("0190C3A2-7D5E-7B1C-9A4F-3E2D1C0B9A87")
        == "0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87"
    )
    for bad in (
        "",
        "job-id-here",
        "0190c3a27d5e7b1c9a4f3e2d1c0b9a87",
        "{0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a8}",
    ):
        with pytest.raises(InvalidJob) as raised:
            validate_job_id(bad)
        assert raised.value.field == "id"


def test_errors_are_bounded() -> None:
    assert truncate_error("short") == "short"
    long = truncate_error("x" * 100_000)
    assert len(long) == 8_192
    assert long.endswith("...")
