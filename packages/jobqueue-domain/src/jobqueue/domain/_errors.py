"""The domain's error hierarchy: transports map these to their own status codes."""

from __future__ import annotations


class JobQueueError(Exception):
    """Root of every error jobqueue raises on purpose."""


class InvalidJob(JobQueueError):
    """Raised when a caller's input breaks a rule: a bad type, payload, time, id or option.

    ``field`` names the offending input so a transport can point at it.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class JobNotFound(JobQueueError):
    """Raised when no job with the given id exists (never did, or its retention ran out)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class JobAlreadyFinished(JobQueueError):
    """Raised when an operation needs a live job but the job reached a terminal status."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id} is already {status}")
        self.job_id = job_id
        self.status = status


class InvalidTransition(JobQueueError):
    """Raised when the state machine has no edge for a status and an event."""

    def __init__(self, status: str, event: str) -> None:
        super().__init__(f"no transition from {status} on {event}")
        self.status = status
        self.event = event


class LeaseLost(JobQueueError):
    """Raised when a worker acts on a job with a lease token that is no longer current.

    The job was re-delivered (its lease expired) or already settled; the stale
    worker's outcome is discarded so it cannot overwrite the new owner's.
    """

    def __init__(self, job_id: str) -> None:
        super().__init__(f"lease on job {job_id} is no longer held")
        self.job_id = job_id


class CapacityExceeded(JobQueueError):
    """Raised when a store refuses new jobs because a configured limit is reached."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StoreUnavailable(JobQueueError):
    """Raised when the store cannot be reached; the operation may be retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
