"""The public surface of ``jobqueue.worker`` and the example service, pinned."""

from __future__ import annotations

import jobqueue.worker
import jobqueue_example_worker
from jobqueue.domain import JobQueueError
from jobqueue.worker import encode_result


def test_worker_exports_are_pinned() -> None:
    assert sorted(jobqueue.worker.__all__) == sorted(
        [
            "Worker",
            "WorkerSettings",
            "JobContext",
            "Handler",
            "HandlerFunc",
            "AsyncHandlerFunc",
            "SyncHandlerFunc",
            "Middleware",
            "CallNext",
            "encode_result",
            "describe_error",
            "JobSource",
            "StoreSource",
            "GrpcSource",
            "WorkerError",
            "PermanentError",
            "JobCancelled",
            "HandlerTimeout",
            "HandlerAlreadyRegistered",
            "WorkerStateError",
            "SourceUnavailable",
            "SourceError",
        ]
    )
    for name in jobqueue.worker.__all__:
        assert hasattr(jobqueue.worker, name), name


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


def test_results_are_encoded_once_and_compactly() -> None:
    assert encode_result(None) is None
    assert encode_result(b"\xff") == b"\xff"
    assert encode_result("é") == "é".encode()
    assert encode_result({"a": [1, 2], "b": "é"}) == '{"a":[1,2],"b":"é"}'.encode()
    assert encode_result(0) == b"0"
