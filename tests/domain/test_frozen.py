"""Job's slot-writing ``__init__`` (_frozen.py) builds exactly what the generated one did."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from jobqueue.domain import Job, JobStatus, Outcome, OutcomeKind, UniqueRule
from jobqueue.domain._frozen import with_slot_init


def generated_twin() -> type[Any]:
    """A class with Job's fields and the dataclass's own __init__, to compare against."""
    return dataclasses.make_dataclass(
        "Job",
        [(spec.name, spec.type, spec) for spec in dataclasses.fields(Job)],
        frozen=True,
        slots=True,
        kw_only=True,
    )


REQUIRED: dict[str, Any] = {
    "id": "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000",
    "type": "email",
    "payload": b"{}",
    "status": JobStatus.PENDING,
    "execution_time_ms": 5,
    "created_at": 3,
    "updated_at": 4,
}


def as_dict(job: Any) -> dict[str, Any]:
    return {spec.name: getattr(job, spec.name) for spec in dataclasses.fields(job)}


def test_the_signature_is_the_generated_one() -> None:
    ours = inspect.signature(Job.__init__)
    theirs = inspect.signature(generated_twin().__init__)
    assert [(p.name, p.kind) for p in ours.parameters.values()] == [
        (p.name, p.kind) for p in theirs.parameters.values()
    ]
    defaults = {name: p.default for name, p in theirs.parameters.items()}
    for name, param in ours.parameters.items():
        if defaults[name] is inspect.Parameter.empty:
            assert param.default is inspect.Parameter.empty, name
        elif not isinstance(param.default, (dict, type(None), int, bool, str)):
            continue  # the factory marker, compared by value below
        else:
            assert param.default == defaults[name], name


def test_defaults_and_every_field_match_the_generated_init() -> None:
    twin = generated_twin()
    assert as_dict(Job(**REQUIRED)) == as_dict(twin(**REQUIRED))
    every = dict(
        REQUIRED,
        attempts=2,
        max_attempts=7,
        last_error="E: x",
        result=b"r",
        cancel_requested=True,
        idempotency_key="k",
        priority=5,
        limit_key="tenant-1",
        unique=UniqueRule(key="u"),
        progress=0.5,
        progress_message="half",
        headers={"traceparent": "x"},
    )
    assert set(every) == {spec.name for spec in dataclasses.fields(Job)}
    assert as_dict(Job(**every)) == as_dict(twin(**every))


def test_each_job_gets_its_own_default_headers() -> None:
    first, second = Job(**REQUIRED), Job(**REQUIRED)
    assert first.headers == {}
    assert first.headers is not second.headers


def test_the_job_stays_frozen_comparable_and_hashable() -> None:
    job = Job(**REQUIRED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.attempts = 3  # type: ignore[misc]
    assert job == Job(**REQUIRED)
    assert hash(job) == hash(Job(**REQUIRED))
    assert dataclasses.replace(job, attempts=1).attempts == 1


def test_missing_and_unknown_arguments_fail_as_before() -> None:
    with pytest.raises(TypeError):
        Job(**{k: v for k, v in REQUIRED.items() if k != "type"})
    with pytest.raises(TypeError):
        Job(**REQUIRED, colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Job(REQUIRED["id"])  # type: ignore[call-arg]


def test_classes_it_cannot_serve_exactly_are_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class NotSlotted:
        x: int

    with pytest.raises(TypeError):
        with_slot_init(NotSlotted)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Positional:
        x: int

    with pytest.raises(TypeError):
        with_slot_init(Positional)


def test_an_outcome_is_what_the_generated_init_builds() -> None:
    """Outcome has the slot-writing __init__ too (one per settled job, twice through
    the server): same signature, same instance, still frozen."""
    twin = dataclasses.make_dataclass(
        "Outcome",
        [(spec.name, spec.type, spec) for spec in dataclasses.fields(Outcome)],
        frozen=True,
        slots=True,
        kw_only=True,
    )
    assert [
        (p.name, p.kind, p.default) for p in inspect.signature(Outcome).parameters.values()
    ] == [(p.name, p.kind, p.default) for p in inspect.signature(twin).parameters.values()]
    required: dict[str, Any] = {"job_id": "j", "token": "t", "kind": OutcomeKind.RETRY}
    every = dict(required, result=b"r", error="boom", retry_delay_ms=5)
    assert set(every) == {spec.name for spec in dataclasses.fields(Outcome)}
    for values in (required, every):
        assert as_dict(Outcome(**values)) == as_dict(twin(**values))
    outcome = Outcome(**every)
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.error = "other"  # type: ignore[misc]
    assert outcome == Outcome(**every)
    assert hash(outcome) == hash(Outcome(**every))
    with pytest.raises(TypeError):
        Outcome("j", "t", OutcomeKind.RETRY)  # type: ignore[call-arg]
