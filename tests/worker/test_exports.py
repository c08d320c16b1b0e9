"""The public surface of ``jobqueue.worker`` and the example service, pinned."""

from __future__ import annotations

import pytest

import jobqueue.worker
import jobqueue_example_worker
from jobqueue.domain import JobQueueError
from jobqueue.worker._handler import encode_result
from jobqueue.worker._outcomes import describe_error


def test_worker_exports_are_pinned() -> None:
    assert jobqueue.worker.__all__ == [
        # The worker
        "Worker",
        "WorkerSettings",
        "run_command",
        # Handlers
        "JobContext",
        "Handler",
        "HandlerFunc",
        "AsyncHandlerFunc",
        "SyncHandlerFunc",
        "Middleware",
        "CallNext",
        "RetryPolicy",
        # Job sources
        "JobSource",
        "PresenceSource",
        "ProgressSource",
        "SettleClaimSource",
        "StoreSource",
        "GrpcSource",
        # Logging
        "JsonFormatter",
        # Errors
        "WorkerError",
        "PermanentError",
        "JobCancelled",
        "HandlerTimeout",
        "HandlerAlreadyRegistered",
        "WorkerStateError",
        "SourceUnavailable",
        "SourceError",
    ]
    for name in jobqueue.worker.__all__:
        assert hasattr(jobqueue.worker, name), name


@pytest.mark.parametrize("name", ["describe_error", "encode_result"])
def test_internal_helpers_left_the_public_face_with_a_warning(name: str) -> None:
    assert name not in jobqueue.worker.__all__
    with pytest.warns(DeprecationWarning, match=f"jobqueue.worker.{name} is internal"):
        helper = getattr(jobqueue.worker, name)
    assert helper in (describe_error, encode_result)


def test_every_worker_error_descends_from_one_root() -> None:
    errors = [getattr(jobqueue.worker, name) for name in jobqueue.worker.__all__ if "Error" in name]
    errors += [jobqueue.worker.JobCancelled, jobqueue.worker.HandlerTimeout]
    for error in errors:
        assert issubclass(error, jobqueue.worker.WorkerError)
        assert issubclass(error, JobQueueError)
        assert error.__doc__ is not None
        assert error is jobqueue.worker.WorkerError or error.__doc__.startswith("Raised ")


def test_example_worker_exports_exist() -> None:
    for name in jobqueue_example_worker.__all__:
        assert hasattr(jobqueue_example_worker, name), name
    assert isinstance(jobqueue_example_worker.worker, jobqueue.worker.Worker)
    assert jobqueue_example_worker.worker.types == ("send_email", "flaky", "slow")


def test_results_are_encoded_once_and_compactly() -> None:
    assert encode_result(None) is None
    assert encode_result(b"\xff") == b"\xff"
    assert encode_result("é") == "é".encode()
    assert encode_result({"a": [1, 2], "b": "é"}) == '{"a":[1,2],"b":"é"}'.encode()
    assert encode_result(0) == b"0"
