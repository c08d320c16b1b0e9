"""The protobuf wire format of the three ``WorkerService`` calls, written out by hand.

The generated classes need the protobuf runtime, whose Python layer (text
format, descriptor pools, well-known types, pickle, datetime) adds ~2.3 MiB to
every worker process; the worker sends and reads only ten small messages, so
it encodes and decodes them itself. Field numbers are those of
``proto/mpataki/jobqueue/v1/worker.proto`` and ``jobqueue.proto``; the tests
compare this codec with the generated classes in both directions.

Decoding follows protobuf's rules: fields may come in any order, a repeated
scalar may be packed or not, the last value of a singular field wins, and
unknown fields are skipped, so a newer server can add fields without breaking
older workers.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobqueue.domain import Job, JobStatus, Lease, LeaseState, Outcome, OutcomeKind

_VARINT = 0
_I64 = 1
_LEN = 2
_I32 = 5

_BYTES = tuple(bytes((i,)) for i in range(0x80))
"""Every one-byte varint, so the common case allocates nothing."""
_OUTCOME_KIND_FIELDS: dict[OutcomeKind, bytes] = {
    OutcomeKind.COMPLETE: b"\x18\x01",
    OutcomeKind.RETRY: b"\x18\x02",
    OutcomeKind.FAIL: b"\x18\x03",
    OutcomeKind.RELEASE: b"\x18\x04",
    OutcomeKind.CANCELLED: b"\x18\x05",
}
"""``Outcome.kind`` (field 3), encoded."""
_JOB_STATUSES: dict[int, JobStatus] = {status.value: status for status in JobStatus}
_LEASE_STATES: dict[int, LeaseState] = {
    1: LeaseState.ACTIVE,
    2: LeaseState.CANCEL_REQUESTED,
    3: LeaseState.LOST,
}


class WireError(ValueError):
    """Raised for bytes that are not a valid encoding of the expected message."""


# -- encoding -----------------------------------------------------------------


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _BYTES[value]
    if value < 0:
        value += 1 << 64  # int32 and int64 negatives take ten bytes, as in protobuf
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(tag: bytes, data: bytes) -> bytes:
    size = len(data)
    return tag + (_BYTES[size] if size < 0x80 else _varint(size)) + data


def _text_field(tag: bytes, text: str) -> bytes:
    """A proto3 string field without ``optional``: left out when empty, as protobuf does."""
    return _len_field(tag, text.encode()) if text else b""


def encode_claim_request(types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int) -> bytes:
    """``ClaimJobsRequest``."""
    parts = [_len_field(b"\x0a", t.encode()) for t in types]
    if limit:
        parts.append(b"\x10" + _varint(limit))
    if lease_ms:
        parts.append(b"\x18" + _varint(lease_ms))
    if wait_ms:
        parts.append(b"\x20" + _varint(wait_ms))
    return b"".join(parts)


def _encode_outcome(outcome: Outcome) -> bytes:
    message = (
        _text_field(b"\x0a", outcome.job_id)
        + _text_field(b"\x12", outcome.token)
        + _OUTCOME_KIND_FIELDS[outcome.kind]
    )
    if outcome.result is not None:
        message += _len_field(b"\x22", outcome.result)
    if outcome.error is not None:
        message += _len_field(b"\x2a", outcome.error.encode())
    if outcome.retry_at_ms is not None:
        message += b"\x30" + _varint(outcome.retry_at_ms)
    return _len_field(b"\x0a", message)


def encode_settle_request(outcomes: Sequence[Outcome]) -> bytes:
    """``SettleJobsRequest``."""
    return b"".join([_encode_outcome(outcome) for outcome in outcomes])


def encode_renew_request(leases: Sequence[tuple[str, str]], *, lease_ms: int) -> bytes:
    """``RenewLeasesRequest`` of ``(job_id, token)`` pairs."""
    parts = [
        _len_field(b"\x0a", _text_field(b"\x0a", job_id) + _text_field(b"\x12", token))
        for job_id, token in leases
    ]
    if lease_ms:
        parts.append(b"\x10" + _varint(lease_ms))
    return b"".join(parts)


# -- decoding -----------------------------------------------------------------
#
# A claim of hundreds of jobs must not cost the worker much more CPU than the
# generated classes' C parser did, so the loops read tags, lengths and varints
# inline and call out only for unknown fields. Each function reads
# ``data[pos:end]``; an IndexError means the message was cut short.


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than ten bytes")


def _int32(value: int) -> int:
    """An int32 field's value from its varint, truncated as protobuf does."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _skip_field(data: bytes, pos: int, end: int) -> int:
    """The position after the field whose tag starts at ``pos``."""
    tag, pos = _read_varint(data, pos)
    wire_type = tag & 7
    if wire_type == _VARINT:
        pos = _read_varint(data, pos)[1]
    elif wire_type == _LEN:
        size, pos = _read_varint(data, pos)
        pos += size
    elif wire_type == _I64:
        pos += 8
    elif wire_type == _I32:
        pos += 4
    else:
        raise WireError(f"unsupported wire type {wire_type}")
    if pos > end:
        raise WireError("field runs past its message")
    return pos


def _decode_job(data: bytes, pos: int, end: int) -> Job:
    job_id = job_type = ""
    payload = b""
    status = execution_time_ms = created_at = updated_at = attempts = 0
    max_attempts: int | None = None
    last_error: str | None = None
    result: bytes | None = None
    cancel_requested = False
    idempotency_key: str | None = None
    while pos < end:
        tag = data[pos]
        if tag >= 0x80 or tag & 5:  # field 16 or more, or not a varint nor length-delimited
            pos = _skip_field(data, pos, end)
            continue
        value = data[pos + 1]
        pos += 2
        if value >= 0x80:  # a multi-byte varint, or the length of a longer field
            value &= 0x7F
            shift = 7
            while True:
                byte = data[pos]
                pos += 1
                value |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
                if shift >= 70:
                    raise WireError("varint longer than ten bytes")
        if tag & 2:  # length-delimited
            stop = pos + value
            if stop > end:
                raise WireError("field runs past its message")
            if tag == 0x0A:
                job_id = data[pos:stop].decode()
            elif tag == 0x12:
                job_type = data[pos:stop].decode()
            elif tag == 0x1A:
                payload = data[pos:stop]
            elif tag == 0x52:
                last_error = data[pos:stop].decode()
            elif tag == 0x5A:
                result = data[pos:stop]
            elif tag == 0x6A:
                idempotency_key = data[pos:stop].decode()
            pos = stop
        else:  # varint
            if value >= 0x8000000000000000:  # a negative int64
                value -= 0x10000000000000000
            if tag == 0x28:
                execution_time_ms = value
            elif tag == 0x30:
                created_at = value
            elif tag == 0x38:
                updated_at = value
            elif tag == 0x20:
                status = value
            elif tag == 0x40:
                attempts = _int32(value)
            elif tag == 0x48:
                max_attempts = _int32(value)
            elif tag == 0x60:
                cancel_requested = value != 0
    if pos != end:
        raise WireError("field runs past its message")
    job_status = _JOB_STATUSES.get(status)
    if job_status is None:
        raise WireError(f"unknown job status {status}")
    return Job(
        id=job_id,
        type=job_type,
        payload=payload,
        status=job_status,
        execution_time_ms=execution_time_ms,
        created_at=created_at,
        updated_at=updated_at,
        attempts=attempts,
        max_attempts=max_attempts,
        last_error=last_error,
        result=result,
        cancel_requested=cancel_requested,
        idempotency_key=idempotency_key,
    )


def _decode_lease(data: bytes, pos: int, end: int) -> Lease:
    job: Job | None = None
    token = ""
    deadline_ms = 0
    while pos < end:
        tag = data[pos]
        if tag == 0x0A or tag == 0x12:
            size = data[pos + 1]
            pos += 2
            if size >= 0x80:
                size, pos = _read_varint(data, pos - 1)
            stop = pos + size
            if stop > end:
                raise WireError("field runs past its message")
            if tag == 0x0A:
                job = _decode_job(data, pos, stop)
            else:
                token = data[pos:stop].decode()
            pos = stop
        elif tag == 0x18:
            deadline_ms, pos = _read_varint(data, pos + 1)
            if deadline_ms >= 0x8000000000000000:
                deadline_ms -= 0x10000000000000000
        else:
            pos = _skip_field(data, pos, end)
    if pos != end:
        raise WireError("field runs past its message")
    if job is None:
        raise WireError("lease without a job")
    return Lease(job, token, deadline_ms)


def decode_claim_response(data: bytes) -> list[Lease]:
    """``ClaimJobsResponse``: its leases."""
    leases: list[Lease] = []
    pos, end = 0, len(data)
    try:
        while pos < end:
            if data[pos] == 0x0A:
                size = data[pos + 1]
                pos += 2
                if size >= 0x80:
                    size, pos = _read_varint(data, pos - 1)
                stop = pos + size
                if stop > end:
                    raise WireError("field runs past its message")
                leases.append(_decode_lease(data, pos, stop))
                pos = stop
            else:
                pos = _skip_field(data, pos, end)
    except IndexError:
        raise WireError("truncated message") from None
    except UnicodeDecodeError:
        raise WireError("string field is not valid UTF-8") from None
    return leases


def _repeated_varints(data: bytes) -> list[int]:
    """Field 1 of a message whose only field is a repeated varint, packed or not."""
    values: list[int] = []
    pos, end = 0, len(data)
    try:
        while pos < end:
            tag = data[pos]
            if tag == 0x0A:
                size, pos = _read_varint(data, pos + 1)
                stop = pos + size
                if stop > end:
                    raise WireError("field runs past its message")
                while pos < stop:
                    value, pos = _read_varint(data, pos)
                    values.append(value)
                if pos != stop:
                    raise WireError("packed field runs past its length")
            elif tag == 0x08:
                value, pos = _read_varint(data, pos + 1)
                values.append(value)
            else:
                pos = _skip_field(data, pos, end)
    except IndexError:
        raise WireError("truncated message") from None
    return values


def decode_settle_response(data: bytes) -> list[bool]:
    """``SettleJobsResponse``: accepted or not, per outcome."""
    return [value != 0 for value in _repeated_varints(data)]


def decode_renew_response(data: bytes) -> list[LeaseState]:
    """``RenewLeasesResponse``: each lease's state.

    An unknown future state is read as ACTIVE, "keep going": the next heartbeat
    asks again, and a stale token is refused at settle anyway.
    """
    return [_LEASE_STATES.get(value, LeaseState.ACTIVE) for value in _repeated_varints(data)]
