"""Proto messages to domain values and back.

Proto3 has no null: optional scalars are read with ``HasField`` so that "unset"
and "zero" stay apart, and enums are open, so a number this server does not
know is rejected here as the caller's mistake instead of failing deeper down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from jobqueue.domain import (
    EnqueueRequest,
    InvalidJob,
    Job,
    JobStatus,
    Lease,
    LeaseState,
    OnConflict,
    Outcome,
    OutcomeKind,
    QueueStats,
    TypeStats,
    UniqueRule,
    UniqueScope,
)
from jobqueue.domain._job import stored_job
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import worker_pb2 as worker_pb

_E = TypeVar("_E", UniqueScope, OnConflict)

_OUTCOME_KINDS: dict[int, OutcomeKind] = {
    worker_pb.OUTCOME_KIND_COMPLETE: OutcomeKind.COMPLETE,
    worker_pb.OUTCOME_KIND_RETRY: OutcomeKind.RETRY,
    worker_pb.OUTCOME_KIND_FAIL: OutcomeKind.FAIL,
    worker_pb.OUTCOME_KIND_RELEASE: OutcomeKind.RELEASE,
    worker_pb.OUTCOME_KIND_CANCELLED: OutcomeKind.CANCELLED,
}
_LEASE_STATES: dict[LeaseState, worker_pb.LeaseState.ValueType] = {
    LeaseState.ACTIVE: worker_pb.LEASE_STATE_ACTIVE,
    LeaseState.CANCEL_REQUESTED: worker_pb.LEASE_STATE_CANCEL_REQUESTED,
    LeaseState.LOST: worker_pb.LEASE_STATE_LOST,
}


# -- jobs ----------------------------------------------------------------------


def job_to_proto(job: Job) -> pb.Job:
    """The wire form of a job; the domain's status numbers are the wire's by design."""
    message = pb.Job()
    fill_job(message, job)
    return message


def add_jobs(target: RepeatedCompositeFieldContainer[pb.Job], jobs: Iterable[Job]) -> None:
    """Append jobs to a response's repeated field, each built in place.

    ``pb.X(jobs=[...])`` copies every message it is given; ``add`` builds it
    where it stays, about three times faster for a page or a batch.
    """
    add = target.add
    for job in jobs:
        fill_job(add(), job)


def fill_job(message: pb.Job, job: Job) -> None:
    """Write ``job`` into ``message``: a new one, or a field of the response that sends it.

    Every job a claim, an enqueue or a listing answers passes here. Fields
    set one by one on the message that stays skip a keyword dict per job and
    the copy ``pb.X(job=...)`` makes of a nested message (a claim of 100
    leases: 3.7 -> 2.9 µs a lease). Proto3 scalars need no presence, so the
    defaults are written as they are; optional fields only when set, so that
    "unset" stays apart from zero.
    """
    message.id = job.id
    message.type = job.type
    message.payload = job.payload
    message.status = job.status  # type: ignore[assignment]  # the wire numbers are the domain's
    message.execution_time_ms = job.execution_time_ms
    message.created_at = job.created_at
    message.updated_at = job.updated_at
    message.attempts = job.attempts
    message.cancel_requested = job.cancel_requested
    message.priority = job.priority
    if job.max_attempts is not None:
        message.max_attempts = job.max_attempts
    if job.last_error is not None:
        message.last_error = job.last_error
    if job.result is not None:
        message.result = job.result
    if job.idempotency_key is not None:
        message.idempotency_key = job.idempotency_key
    if job.limit_key is not None:
        message.limit_key = job.limit_key
    if job.unique is not None:
        message.unique_key = job.unique.key
        message.unique_scope = job.unique.scope  # type: ignore[assignment]
    if job.progress is not None:
        message.progress = job.progress
        message.progress_message = job.progress_message or ""
    if job.headers:
        message.headers.update(job.headers)


_STATUSES: dict[int, JobStatus] = {int(status): status for status in JobStatus}


def job_from_proto(message: pb.Job) -> Job:
    """The domain form of a wire job, for clients of the API (and every lease a worker gets)."""
    status = _STATUSES.get(message.status)
    if status is None:
        status = status_from_proto(message.status)  # its error
    has = message.HasField
    headers = message.headers
    return stored_job(
        message.id,
        message.type,
        message.payload,
        status,
        message.execution_time_ms,
        message.created_at,
        message.updated_at,
        message.attempts,
        message.max_attempts if has("max_attempts") else None,
        message.last_error if has("last_error") else None,
        message.result if has("result") else None,
        message.cancel_requested,
        message.idempotency_key if has("idempotency_key") else None,
        message.priority,
        message.limit_key if has("limit_key") else None,
        UniqueRule(key=message.unique_key, scope=UniqueScope(message.unique_scope or 2))
        if has("unique_key")
        else None,
        message.progress if has("progress") else None,
        message.progress_message if has("progress") else None,
        dict(headers) if headers else {},
    )


def status_from_proto(value: int, *, field: str = "status") -> JobStatus:
    """The domain status of a wire number; UNSPECIFIED and unknown numbers are errors."""
    try:
        return JobStatus(value)
    except ValueError:
        raise InvalidJob(field, f"{value} is not a known JobStatus") from None


def status_filter_from_proto(value: int) -> JobStatus | None:
    """A listing's status filter: UNSPECIFIED means any status."""
    return None if value == pb.JOB_STATUS_UNSPECIFIED else status_from_proto(value)


_PLAIN_FIELDS = ("type", "payload")
"""The fields of a job that uses no option: mapped without asking after the others."""


def enqueue_request_from_proto(message: pb.EnqueueJobRequest) -> EnqueueRequest:
    """Field checks are the domain's; this only keeps unset apart from zero."""
    # Most jobs set a type and a payload only: one ListFields (set fields,
    # an explicitly set zero included) instead of a HasField per option
    # (issue 15 kept a plain bulk enqueue within 10% of before).
    plain = True
    for descriptor, _ in message.ListFields():
        if descriptor.name not in _PLAIN_FIELDS:
            plain = False
            break
    if plain:
        return EnqueueRequest(type=message.type, payload=message.payload)
    return EnqueueRequest(
        type=message.type,
        payload=message.payload,
        execution_time_ms=message.execution_time_ms
        if message.HasField("execution_time_ms")
        else None,
        max_attempts=message.max_attempts if message.HasField("max_attempts") else None,
        idempotency_key=message.idempotency_key if message.HasField("idempotency_key") else None,
        priority=message.priority,
        limit_key=message.limit_key if message.HasField("limit_key") else None,
        unique_key=message.unique_key if message.HasField("unique_key") else None,
        unique_scope=_known(UniqueScope, message.unique_scope, "unique_scope"),
        on_conflict=_known(OnConflict, message.on_conflict, "on_conflict"),
        unique_window_ms=message.unique_window_ms if message.HasField("unique_window_ms") else None,
        headers=dict(message.headers),
    )


_WIRE_ENUMS = {UniqueScope: "UniqueScope", OnConflict: "UniqueConflictPolicy"}
"""The proto's name of each domain enum: an API caller knows the wire's names only."""


def _known(enum: type[_E], value: int, field: str) -> _E | None:
    """An open wire enum as the domain's: UNSPECIFIED is None, an unknown number is refused."""
    if value == 0:
        return None
    try:
        return enum(value)
    except ValueError:
        raise InvalidJob(field, f"{value} is not a known {_WIRE_ENUMS[enum]}") from None


def stats_to_proto(stats: QueueStats) -> pb.GetQueueStatsResponse:
    return pb.GetQueueStatsResponse(
        types=[_type_stats_to_proto(row) for row in stats.types],
        total=_type_stats_to_proto(stats.total),
        omitted_types=stats.omitted_types,
    )


def _type_stats_to_proto(row: TypeStats) -> pb.TypeStats:
    return pb.TypeStats(
        type=row.type,
        pending=row.pending,
        scheduled=row.scheduled,
        running=row.running,
        completed=row.completed,
        failed=row.failed,
        cancelled=row.cancelled,
        paused=row.paused,
        oldest_pending_age_ms=row.oldest_pending_age_ms,
        workers=row.workers,
    )


# -- leases --------------------------------------------------------------------


def lease_to_proto(lease: Lease) -> worker_pb.Lease:
    message = worker_pb.Lease(token=lease.token, deadline_ms=lease.deadline_ms)
    fill_job(message.job, lease.job)
    return message


def add_leases(
    target: RepeatedCompositeFieldContainer[worker_pb.Lease], leases: Iterable[Lease]
) -> int:
    """Append leases, each built in place with its job (see ``add_jobs``); returns the
    bytes of their payloads, counted on the way (the servicer sizes its answer by them)."""
    add = target.add
    payloads = 0
    for lease in leases:
        job = lease.job
        payloads += len(job.payload)
        fill_job(add(token=lease.token, deadline_ms=lease.deadline_ms).job, job)
    return payloads


def lease_state_to_proto(state: LeaseState) -> worker_pb.LeaseState.ValueType:
    return _LEASE_STATES[state]


def outcome_from_proto(
    message: worker_pb.Outcome, *, index: int, delay_until: Callable[[int], int]
) -> Outcome:
    """A worker's verdict as the domain's ``Outcome``; InvalidJob for an unknown kind.

    Only the mapping is here: the checks of ids and tokens and the rules on
    results, delays and errors are ``LeaseService``'s, the same on the direct
    path. An old worker's ``retry_at_ms`` becomes a delay through
    ``delay_until`` (``LeaseService.delay_until``); ``retry_delay_ms`` wins
    when both are set.
    """
    kind = _OUTCOME_KINDS.get(message.kind)
    if kind is None:
        raise InvalidJob(f"outcomes[{index}].kind", f"{message.kind} is not a known OutcomeKind")
    retry_delay_ms: int | None = None
    if message.HasField("retry_delay_ms"):
        retry_delay_ms = message.retry_delay_ms
    elif message.HasField("retry_at_ms"):
        retry_delay_ms = delay_until(message.retry_at_ms)
    return Outcome(
        job_id=message.job_id,
        token=message.token,
        kind=kind,
        result=message.result if message.HasField("result") else None,
        error=message.error if message.HasField("error") else None,
        retry_delay_ms=retry_delay_ms,
    )


def lease_refs_from_proto(refs: Sequence[worker_pb.LeaseRef]) -> list[tuple[str, str]]:
    """``(job_id, token)`` pairs, checked by ``LeaseService.renew``."""
    return [(ref.job_id, ref.token) for ref in refs]
