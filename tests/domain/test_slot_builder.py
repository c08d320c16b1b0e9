"""``slot_builder`` (_frozen.py) builds what the keyword call builds, positionally.

The service's plain job and the Redis store's stamped job are built this way
on every enqueue: a field left out must take its default exactly as
``Job(...)`` leaves it, a factory's default must be fresh per instance.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from jobqueue.domain import Job, JobStatus
from jobqueue.domain._frozen import slot_builder
from jobqueue.domain._service import _plain_job


def test_the_plain_job_is_the_keyword_built_one() -> None:
    built = _plain_job("i", "t", b"p", 9, 5, 3, "k")
    assert built == Job(
        id="i",
        type="t",
        payload=b"p",
        status=JobStatus.PENDING,
        execution_time_ms=9,
        created_at=5,
        updated_at=5,
        max_attempts=3,
        idempotency_key="k",
    )
    assert dataclasses.asdict(built) == dataclasses.asdict(Job(**_fields(built)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.id = "other"  # type: ignore[misc]


def test_a_factory_default_is_fresh_per_instance() -> None:
    one, two = (_plain_job("i", "t", b"", 1, 1, None, None) for _ in range(2))
    assert one.headers == {}
    assert one.headers is not two.headers


def test_a_field_without_value_or_default_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Job\.type"):
        slot_builder(Job, ("id",), {"id": "id"})
    with pytest.raises(TypeError, match="no field"):
        slot_builder(Job, ("x",), {"colour": "x"})


def _fields(job: Job) -> dict[str, Any]:
    return {spec.name: getattr(job, spec.name) for spec in dataclasses.fields(job)}
