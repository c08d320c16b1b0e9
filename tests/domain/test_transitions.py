from __future__ import annotations

import itertools

import pytest

from jobqueue.domain import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    Event,
    InvalidTransition,
    Job,
    JobStatus,
    resolve,
    transition,
)

EDGES = {
    (JobStatus.PENDING, Event.CLAIM): JobStatus.RUNNING,
    (JobStatus.PENDING, Event.CANCEL): JobStatus.CANCELLED,
    (JobStatus.RUNNING, Event.COMPLETE): JobStatus.COMPLETED,
    (JobStatus.RUNNING, Event.RETRY): JobStatus.PENDING,
    (JobStatus.RUNNING, Event.RELEASE): JobStatus.PENDING,
    (JobStatus.RUNNING, Event.EXPIRE): JobStatus.PENDING,
    (JobStatus.RUNNING, Event.FAIL): JobStatus.FAILED,
    (JobStatus.RUNNING, Event.CANCEL): JobStatus.RUNNING,
    (JobStatus.RUNNING, Event.ABORT): JobStatus.CANCELLED,
    (JobStatus.FAILED, Event.REVIVE): JobStatus.PENDING,
    (JobStatus.CANCELLED, Event.REVIVE): JobStatus.PENDING,
}


@pytest.mark.parametrize(("status", "event"), list(itertools.product(JobStatus, Event)))
def test_every_status_and_event(status: JobStatus, event: Event) -> None:
    expected = EDGES.get((status, event))
    if expected is None:
        with pytest.raises(InvalidTransition):
            transition(status, event)
    else:
        assert transition(status, event) is expected


def test_terminal_statuses_have_no_edges_but_an_operators_revive() -> None:
    assert {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED} == TERMINAL_STATUSES
    assert JobStatus.COMPLETED not in TRANSITIONS
    assert all(
        set(TRANSITIONS[status]) == {Event.REVIVE}
        for status in TERMINAL_STATUSES - {JobStatus.COMPLETED}
    )
    assert all(status.is_terminal for status in TERMINAL_STATUSES)


def running(**changes: object) -> Job:
    base = Job(
        id="0190c3a2-7d5e-7b1c-9a4f-3e2d1c0b9a87",
        type="t",
        payload=b"",
        status=JobStatus.RUNNING,
        execution_time_ms=0,
        created_at=0,
        updated_at=0,
        attempts=1,
    )
    return base if not changes else Job(**{**_fields(base), **changes})  # type: ignore[arg-type]


def _fields(job: Job) -> dict[str, object]:
    return {name: getattr(job, name) for name in job.__dataclass_fields__}


@pytest.mark.parametrize("event", [Event.RETRY, Event.RELEASE, Event.EXPIRE])
def test_requested_cancel_turns_a_requeue_into_abort(event: Event) -> None:
    assert resolve(running(cancel_requested=True), event) is Event.ABORT
    assert resolve(running(), event) is event


def test_expiry_on_the_last_attempt_fails() -> None:
    assert resolve(running(attempts=3, max_attempts=3), Event.EXPIRE) is Event.FAIL
    assert resolve(running(attempts=2, max_attempts=3), Event.EXPIRE) is Event.EXPIRE
    assert resolve(running(attempts=10), Event.EXPIRE, default_max_attempts=10) is Event.FAIL


def test_complete_is_never_rewritten() -> None:
    assert resolve(running(cancel_requested=True), Event.COMPLETE) is Event.COMPLETE
