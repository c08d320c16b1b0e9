"""A wire job with no option maps by a shortcut; any field set, even to zero, takes the full map."""

from __future__ import annotations

import pytest

from jobqueue.domain import EnqueueRequest, InvalidJob, OnConflict, UniqueScope
from jobqueue.grpc._mapping import enqueue_request_from_proto
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb


def test_a_plain_job_maps_to_type_and_payload() -> None:
    assert enqueue_request_from_proto(pb.EnqueueJobRequest()) == EnqueueRequest(type="")
    message = pb.EnqueueJobRequest(type="t", payload=b"p")
    assert enqueue_request_from_proto(message) == EnqueueRequest(type="t", payload=b"p")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"execution_time_ms": 0}, {"execution_time_ms": 0}),
        ({"max_attempts": 0}, {"max_attempts": 0}),
        ({"idempotency_key": ""}, {"idempotency_key": ""}),
        ({"priority": 5}, {"priority": 5}),
        ({"limit_key": ""}, {"limit_key": ""}),
        ({"unique_key": "", "unique_window_ms": 0}, {"unique_key": "", "unique_window_ms": 0}),
        (
            {"unique_scope": 1, "on_conflict": 2},
            {"unique_scope": UniqueScope(1), "on_conflict": OnConflict(2)},
        ),
        ({"headers": {"a": "b"}}, {"headers": {"a": "b"}}),
    ],
)
def test_an_option_set_even_to_zero_is_kept(
    fields: dict[str, object], expected: dict[str, object]
) -> None:
    message = pb.EnqueueJobRequest(type="t", payload=b"p", **fields)  # type: ignore[arg-type]
    assert enqueue_request_from_proto(message) == EnqueueRequest(
        type="t",
        payload=b"p",
        **expected,  # type: ignore[arg-type]
    )


def test_an_unknown_enum_number_is_still_refused() -> None:
    with pytest.raises(InvalidJob):
        enqueue_request_from_proto(pb.EnqueueJobRequest(type="t", unique_scope=99))  # type: ignore[arg-type]
