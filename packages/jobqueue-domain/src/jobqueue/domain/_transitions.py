"""The job state machine: one table of edges, and the guards that pick an edge."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from ._errors import InvalidTransition
from ._job import Job, JobStatus


class Event(enum.Enum):
    """Something that happens to a job."""

    CLAIM = "claim"
    CANCEL = "cancel"
    COMPLETE = "complete"
    RETRY = "retry"
    FAIL = "fail"
    RELEASE = "release"
    EXPIRE = "expire"
    ABORT = "abort"
    REVIVE = "revive"
    """An operator retries a finished job (AdminService.RetryJob)."""


TRANSITIONS: Mapping[JobStatus, Mapping[Event, JobStatus]] = {
    JobStatus.PENDING: {
        Event.CLAIM: JobStatus.RUNNING,
        Event.CANCEL: JobStatus.CANCELLED,
    },
    JobStatus.RUNNING: {
        Event.COMPLETE: JobStatus.COMPLETED,
        Event.RETRY: JobStatus.PENDING,
        Event.RELEASE: JobStatus.PENDING,
        Event.EXPIRE: JobStatus.PENDING,
        Event.FAIL: JobStatus.FAILED,
        # A running handler cannot be stopped from here: cancelling only raises
        # the job's cancel_requested flag, and the worker confirms with ABORT.
        Event.CANCEL: JobStatus.RUNNING,
        Event.ABORT: JobStatus.CANCELLED,
    },
    # Only an operator leaves a terminal status: a retry runs the job again with
    # a fresh attempt budget. COMPLETED has no edge (its work is done), and
    # deleting a finished job is no transition: the job is gone.
    JobStatus.FAILED: {Event.REVIVE: JobStatus.PENDING},
    JobStatus.CANCELLED: {Event.REVIVE: JobStatus.PENDING},
}
"""Every legal edge. Terminal statuses have none but the operator's REVIVE."""

DEFAULT_MAX_ATTEMPTS = 10
"""Attempts a job gets when neither its producer nor its handler chose a number.

Sidekiq's 25 retries span three weeks; with our capped backoff ten attempts
span about half an hour, long enough to ride out a dependency's restart and
short enough that a broken job surfaces as FAILED the same day.
"""


MAX_UNCONFIRMED_DELIVERIES = 3
"""Lease expiries in a row that a job may have before its first renew or settle
without being charged an attempt.

A claim's reply can be lost (a cut connection, a caller that gave up), and
then the job never ran: charging it would fail jobs that never ran. But a job
that kills its worker before the worker confirms the lease looks the same, so
the allowance is bounded and such a job still ends FAILED.
"""


def transition(status: JobStatus, event: Event) -> JobStatus:
    """The status an event moves a job to; raises InvalidTransition if there is no edge."""
    try:
        return TRANSITIONS[status][event]
    except KeyError:
        raise InvalidTransition(status.name, event.value) from None


def effective_max_attempts(job: Job, default: int = DEFAULT_MAX_ATTEMPTS) -> int:
    """The producer's choice if it made one, else ``default``."""
    return job.max_attempts if job.max_attempts is not None else default


def resolve(job: Job, event: Event, *, default_max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Event:
    """The event that really applies once the job's flags are taken into account.

    A job whose cancellation was requested is never handed back to the queue:
    RETRY, RELEASE and EXPIRE become ABORT. A job whose lease expired on its
    last attempt (its worker died every time) becomes FAIL, so a job that
    crashes workers cannot loop for ever.
    """
    if job.status is JobStatus.RUNNING:
        if event in (Event.RETRY, Event.RELEASE, Event.EXPIRE) and job.cancel_requested:
            return Event.ABORT
        if event is Event.EXPIRE and job.attempts >= effective_max_attempts(
            job, default_max_attempts
        ):
            return Event.FAIL
    return event
