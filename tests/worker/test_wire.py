"""GrpcSource's hand-written codec, checked against the generated protobuf classes.

The worker does not import protobuf (see ``jobqueue.worker._wire``), so these
tests are what keeps its encoding in step with ``worker.proto``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobqueue.domain import Job, JobStatus, Lease, LeaseState, Outcome, OutcomeKind
from jobqueue.worker import GrpcSource, SourceError
from jobqueue.worker import _wire as wire
from mpataki.jobqueue.v1 import jobqueue_pb2 as jpb
from mpataki.jobqueue.v1 import worker_pb2 as pb

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=300)
BLOB = st.binary(max_size=300)

OUTCOME_KINDS = {
    OutcomeKind.COMPLETE: pb.OUTCOME_KIND_COMPLETE,
    OutcomeKind.RETRY: pb.OUTCOME_KIND_RETRY,
    OutcomeKind.FAIL: pb.OUTCOME_KIND_FAIL,
    OutcomeKind.RELEASE: pb.OUTCOME_KIND_RELEASE,
    OutcomeKind.CANCELLED: pb.OUTCOME_KIND_CANCELLED,
}


def job_message(**fields: Any) -> jpb.Job:
    defaults: dict[str, Any] = {
        "id": "0190a0b4-7e57-7000-8000-000000000001",
        "type": "email",
        "payload": b"x" * 100,
        "status": jpb.JOB_STATUS_RUNNING,
        "execution_time_ms": 1_780_000_000_000,
        "created_at": 1_780_000_000_000,
        "updated_at": 1_780_000_000_123,
        "attempts": 1,
    }
    return jpb.Job(**(defaults | fields))


def expected_job(message: jpb.Job) -> Job:
    has = message.HasField
    return Job(
        id=message.id,
        type=message.type,
        payload=message.payload,
        status=JobStatus(message.status),
        execution_time_ms=message.execution_time_ms,
        created_at=message.created_at,
        updated_at=message.updated_at,
        attempts=message.attempts,
        max_attempts=message.max_attempts if has("max_attempts") else None,
        last_error=message.last_error if has("last_error") else None,
        result=message.result if has("result") else None,
        cancel_requested=message.cancel_requested,
        idempotency_key=message.idempotency_key if has("idempotency_key") else None,
    )


def claim_response(*jobs: jpb.Job, deadline_ms: int = 1_780_000_030_000) -> bytes:
    leases = [
        pb.Lease(job=job, token=f"token-{i}", deadline_ms=deadline_ms) for i, job in enumerate(jobs)
    ]
    return pb.ClaimJobsResponse(leases=leases).SerializeToString()


def field(number: int, wire_type: int, value: bytes) -> bytes:
    """One raw field: its tag, then ``value`` as it goes on the wire."""
    return wire._varint(number << 3 | wire_type) + value


# -- requests -----------------------------------------------------------------


@given(
    types=st.lists(TEXT, max_size=4),
    limit=INT32,
    lease_ms=INT64,
    wait_ms=INT64,
)
def test_claim_requests_are_encoded_as_protobuf_does(
    types: list[str], limit: int, lease_ms: int, wait_ms: int
) -> None:
    expected = pb.ClaimJobsRequest(types=types, max_jobs=limit, lease_ms=lease_ms, wait_ms=wait_ms)
    encoded = wire.encode_claim_request(types, limit=limit, lease_ms=lease_ms, wait_ms=wait_ms)
    assert encoded == expected.SerializeToString()


@given(
    st.lists(
        st.builds(
            Outcome,
            job_id=TEXT,
            token=TEXT,
            kind=st.sampled_from(OutcomeKind),
            result=st.none() | BLOB,
            error=st.none() | TEXT,
            retry_at_ms=st.none() | INT64,
        ),
        max_size=5,
    )
)
def test_settle_requests_are_encoded_as_protobuf_does(outcomes: list[Outcome]) -> None:
    messages = []
    for outcome in outcomes:
        message = pb.Outcome(
            job_id=outcome.job_id, token=outcome.token, kind=OUTCOME_KINDS[outcome.kind]
        )
        if outcome.result is not None:
            message.result = outcome.result
        if outcome.error is not None:
            message.error = outcome.error
        if outcome.retry_at_ms is not None:
            message.retry_at_ms = outcome.retry_at_ms
        messages.append(message)
    expected = pb.SettleJobsRequest(outcomes=messages).SerializeToString()
    assert wire.encode_settle_request(outcomes) == expected


@given(leases=st.lists(st.tuples(TEXT, TEXT), max_size=5), lease_ms=INT64)
def test_renew_requests_are_encoded_as_protobuf_does(
    leases: list[tuple[str, str]], lease_ms: int
) -> None:
    expected = pb.RenewLeasesRequest(
        leases=[pb.LeaseRef(job_id=job_id, token=token) for job_id, token in leases],
        lease_ms=lease_ms,
    )
    encoded = wire.encode_renew_request(leases, lease_ms=lease_ms)
    assert encoded == expected.SerializeToString()


# -- responses ----------------------------------------------------------------


JOBS = st.builds(
    job_message,
    id=TEXT,
    type=TEXT,
    payload=BLOB,
    status=st.sampled_from(JobStatus).map(int),
    execution_time_ms=INT64,
    created_at=INT64,
    updated_at=INT64,
    attempts=INT32,
    max_attempts=st.none() | INT32,
    last_error=st.none() | TEXT,
    result=st.none() | BLOB,
    cancel_requested=st.booleans(),
    idempotency_key=st.none() | TEXT,
)


@given(jobs=st.lists(JOBS, max_size=4), deadline_ms=INT64)
def test_claim_responses_decode_as_protobuf_reads_them(
    jobs: list[jpb.Job], deadline_ms: int
) -> None:
    data = claim_response(*jobs, deadline_ms=deadline_ms)
    expected = [Lease(expected_job(job), f"token-{i}", deadline_ms) for i, job in enumerate(jobs)]
    assert wire.decode_claim_response(data) == expected


def test_every_field_of_a_job_is_decoded() -> None:
    """A field added to the proto's Job without a line in ``_wire`` fails here."""
    message = job_message(
        max_attempts=3, last_error="boom", result=b"ok", cancel_requested=True, idempotency_key="k"
    )
    for descriptor in jpb.Job.DESCRIPTOR.fields:
        assert getattr(message, descriptor.name), f"give {descriptor.name} a value above"
    [lease] = wire.decode_claim_response(claim_response(message))
    for descriptor in jpb.Job.DESCRIPTOR.fields:
        decoded = getattr(lease.job, descriptor.name)
        assert decoded == getattr(message, descriptor.name), descriptor.name


def test_fields_in_any_order_and_unknown_fields_are_read() -> None:
    """A newer server may add fields; protobuf writers may order fields as they like."""
    message = job_message(max_attempts=4, idempotency_key="key")
    parts = [
        jpb.Job(**{descriptor.name: value}).SerializeToString()
        for descriptor, value in reversed(message.ListFields())
    ]
    unknown = (
        field(99, 0, wire._varint(7))
        + field(100, 1, b"\x00" * 8)
        + field(101, 2, wire._varint(3) + b"abc")
        + field(102, 5, b"\x00" * 4)
        + field(14, 0, wire._varint(2**64 - 1))
        + field(14, 1, b"\xff" * 8)
        + field(15, 5, b"\xff" * 4)
    )
    job_bytes = unknown + b"".join(parts) + unknown
    lease = (
        field(3, 0, wire._varint(42))
        + unknown
        + field(2, 2, wire._varint(1) + b"t")
        + field(1, 2, wire._varint(len(job_bytes)) + job_bytes)
    )
    data = unknown + field(1, 2, wire._varint(len(lease)) + lease) + unknown
    assert wire.decode_claim_response(data) == [Lease(expected_job(message), "t", 42)]


def test_the_last_value_of_a_repeated_singular_field_wins() -> None:
    job = job_message().SerializeToString() + jpb.Job(attempts=5).SerializeToString()
    lease = field(1, 2, wire._varint(len(job)) + job)
    data = field(1, 2, wire._varint(len(lease)) + lease)
    [decoded] = wire.decode_claim_response(data)
    assert decoded.job.attempts == 5


def test_settle_and_renew_responses_packed_or_not() -> None:
    accepted = [True, False, True]
    packed = pb.SettleJobsResponse(accepted=accepted).SerializeToString()
    unpacked = b"".join(field(1, 0, b"\x01" if ok else b"\x00") for ok in accepted)
    assert packed != unpacked
    assert wire.decode_settle_response(packed) == accepted
    assert wire.decode_settle_response(unpacked) == accepted
    assert wire.decode_settle_response(b"") == []

    states = [pb.LEASE_STATE_ACTIVE, pb.LEASE_STATE_CANCEL_REQUESTED, pb.LEASE_STATE_LOST]
    expected = [LeaseState.ACTIVE, LeaseState.CANCEL_REQUESTED, LeaseState.LOST]
    packed = pb.RenewLeasesResponse(states=states).SerializeToString()
    unpacked = b"".join(field(1, 0, wire._varint(state)) for state in states)
    assert wire.decode_renew_response(packed) == expected
    assert wire.decode_renew_response(unpacked) == expected


def test_an_unknown_lease_state_reads_as_active() -> None:
    """A state a newer server invents must not stop a job: the next heartbeat asks again."""
    data = field(1, 2, wire._varint(2) + wire._varint(9) + wire._varint(3))
    assert wire.decode_renew_response(data) == [LeaseState.ACTIVE, LeaseState.LOST]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(field(1, 2, wire._varint(5) + b"\x0a\x09abc"), id="string past its message"),
        pytest.param(field(1, 2, wire._varint(3) + b"\x0a\x01\xff"), id="invalid UTF-8"),
        pytest.param(field(1, 2, wire._varint(2) + b"\x12\x00"), id="lease without a job"),
        pytest.param(field(1, 3, b""), id="group wire type"),
        pytest.param(field(1, 2, wire._varint(11) + b"\x18" + b"\xff" * 10), id="long varint"),
        pytest.param(
            field(1, 2, wire._varint(15) + b"\x0a\x0d\x28" + b"\xff" * 11 + b"\x01"),
            id="long varint in a job",
        ),
        pytest.param(field(1, 2, wire._varint(4) + b"\x0a\x02\x20\x07"), id="unknown job status"),
    ],
)
def test_malformed_claim_responses_raise_wire_error(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_claim_response(data)


def test_a_cut_message_never_raises_anything_but_wire_error() -> None:
    data = claim_response(job_message(max_attempts=2, last_error="é" * 200), job_message())
    for cut in range(len(data)):
        with contextlib.suppress(wire.WireError):
            wire.decode_claim_response(data[:cut])
    for cut in range(1, 6):
        with pytest.raises(wire.WireError):
            wire.decode_settle_response(
                pb.SettleJobsResponse(accepted=[True] * 300).SerializeToString()[:-cut]
            )


# -- the source ---------------------------------------------------------------


async def test_a_malformed_response_becomes_a_source_error() -> None:
    """What a broken proxy or server sends must reach the worker as the SDK's own error."""
    handler = grpc.method_handlers_generic_handler(
        "mpataki.jobqueue.v1.WorkerService",
        {"ClaimJobs": grpc.unary_unary_rpc_method_handler(lambda request, context: b"\x0a\x05")},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    source = GrpcSource(f"127.0.0.1:{port}", timeout_s=5)
    try:
        with pytest.raises(SourceError) as raised:
            await source.claim(["email"], limit=1, lease_ms=1_000, wait_ms=0)
        assert raised.value.code == "INTERNAL"
        assert "ClaimJobs" in raised.value.message
    finally:
        await source.close()
        await server.stop(None)


def test_the_server_path_does_not_load_protobuf() -> None:
    """protobuf's Python layer costs a worker ~2.3 MiB of RSS; GrpcSource must not need it."""
    code = (
        "import sys\n"
        "from jobqueue.worker import GrpcSource\n"
        "GrpcSource('127.0.0.1:1')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('google', 'mpataki')))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
