"""The public surface of jobqueue.client, pinned: a change here is an API change."""

from __future__ import annotations

import dataclasses
import inspect
import types

import jobqueue.client

EXPECTED = [
    # Clients
    "JobClient",
    "AsyncJobClient",
    "RetryPolicy",
    "DEFAULT_TARGET",
    "DEFAULT_TIMEOUT_S",
    "TARGET_ENV",
    # Values
    "Job",
    "JobStatus",
    "JobSpec",
    "OnConflict",
    "UniqueFor",
    "JobPage",
    "Payload",
    "QueueStats",
    "TypeStats",
    "WorkerInfo",
    "TypeLimits",
    # Recurring schedules
    "Schedule",
    "JobTemplate",
    "OverlapPolicy",
    # Operators' job actions
    "BulkAction",
    "BulkPage",
    "BulkTotals",
    # Errors
    "JobQueueClientError",
    "InvalidJob",
    "JobNotFound",
    "JobAlreadyFinished",
    "QueueFull",
    "ServerUnavailable",
    "DeadlineExceeded",
    "Unauthenticated",
    "PermissionDenied",
    "ServerError",
    "WaitTimeout",
    "JobAlreadyExists",
    "ScheduleNotFound",
    "InvalidSchedule",
    "WrongJobStatus",
]


def test_all_is_pinned() -> None:
    assert jobqueue.client.__all__ == EXPECTED


def test_nothing_public_hides_outside_all() -> None:
    # Submodules (the private _modules, and cli behind the console script) aside,
    # every public name of the package is one of __all__.
    # dir(), not vars(): the package imports its names on first use (PEP 562).
    public = {
        name
        for name in dir(jobqueue.client)
        if not name.startswith("_")
        and not isinstance(getattr(jobqueue.client, name), types.ModuleType)
    }
    assert public == set(EXPECTED)


def test_the_old_duration_names_are_deprecated_aliases_not_exports() -> None:
    # The unit convention: durations end in _s (seconds) in the SDK; old names only warn.
    options = inspect.signature(jobqueue.client.JobClient.__init__).parameters
    assert "timeout_s" in options
    assert "timeout" in options
    assert options["timeout"].default is None
    assert "delay_s" in {field.name for field in dataclasses.fields(jobqueue.client.JobSpec)}


def test_every_export_exists_and_errors_share_one_root() -> None:
    for name in EXPECTED:
        assert hasattr(jobqueue.client, name), name
    errors = [
        getattr(jobqueue.client, name)
        for name in EXPECTED
        if isinstance(getattr(jobqueue.client, name), type)
        and issubclass(getattr(jobqueue.client, name), Exception)
    ]
    assert len(errors) == 15
    for error in errors:
        assert issubclass(error, jobqueue.client.JobQueueClientError)
        assert (error.__doc__ or "").startswith("Raised when"), error


def test_the_sync_and_async_clients_offer_the_same_calls() -> None:
    def public(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")}

    assert public(jobqueue.client.JobClient) == public(jobqueue.client.AsyncJobClient)
    assert "wait" in public(jobqueue.client.JobClient)
