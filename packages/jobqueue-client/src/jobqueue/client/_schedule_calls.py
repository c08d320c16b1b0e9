"""The ScheduleService calls of both clients, written once (as ``_calls`` does for jobs).

Each builder returns a ``Unary`` on ScheduleService's stub that both
transports carry through the same retries and error table. CreateSchedule
and TriggerSchedule carry an idempotency key, fresh for each call unless
given, which every retry repeats: a retry after a lost reply gets the first
attempt's schedule or job back instead of making a second, so they are retried
like the other calls. A schedule's errors are refined: NOT_FOUND becomes
``ScheduleNotFound`` (a ``JobNotFound``), and INVALID_ARGUMENT
``InvalidSchedule`` (an ``InvalidJob``) naming the argument at fault by the
SDK's name (``interval_s`` where the wire says ``interval_ms``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from mpataki.jobqueue.v1 import schedule_pb2 as pb
from mpataki.jobqueue.v1 import schedule_pb2_grpc as pb_grpc

from ._calls import Unary
from ._convert import encode_payload, new_idempotency_key
from ._errors import (
    InvalidJob,
    InvalidSchedule,
    JobNotFound,
    JobQueueClientError,
    ScheduleNotFound,
)
from ._models import Payload
from ._schedule_models import JobTemplate, OverlapPolicy, Schedule

R = TypeVar("R")

_STUB = pb_grpc.ScheduleServiceStub

_OVERLAP_TO_PROTO: dict[OverlapPolicy, pb.OverlapPolicy.ValueType] = {
    OverlapPolicy.SKIP: pb.OVERLAP_POLICY_SKIP,
    OverlapPolicy.BUFFER_ONE: pb.OVERLAP_POLICY_BUFFER_ONE,
    OverlapPolicy.ALLOW_ALL: pb.OVERLAP_POLICY_ALLOW_ALL,
}
_OVERLAP_FROM_PROTO: dict[int, OverlapPolicy] = {
    pb.OVERLAP_POLICY_UNSPECIFIED: OverlapPolicy.SKIP,  # the server's default
    **{int(number): policy for policy, number in _OVERLAP_TO_PROTO.items()},
}

_SDK_NAMES = {"interval_ms": "interval_s", "catchup_window_ms": "catchup_window_s"}
"""The server's field names that the SDK spells otherwise (durations in seconds)."""


def create_schedule(
    name: str,
    type: str,
    payload: Payload = None,
    *,
    cron: str | None = None,
    interval_s: timedelta | float | None = None,
    time_zone: str = "UTC",
    overlap: OverlapPolicy | str = OverlapPolicy.SKIP,
    catchup_window_s: timedelta | float | None = None,
    headers: Mapping[str, str] | None = None,
    max_attempts: int | None = None,
    paused: bool = False,
    priority: int = 0,
    idempotency_key: str | None = None,
    limit_key: str | None = None,
) -> Unary[Schedule]:
    """Create a schedule that enqueues a job of ``type`` at every tick.

    Give exactly one of ``cron`` and ``interval_s``. Every server fires
    schedules, with no leader, and each tick's job is enqueued once however
    many servers run (its idempotency key is ``schedule:<id>:<tick ms>``).

    Retried when the server is unavailable, safely: every attempt carries the
    same idempotency key, and the server answers a repeat with the schedule the
    first attempt created (for 24 hours, while that schedule exists).

    Args:
        name: a label for people, 1-200 characters.
        type: which handler runs each tick's job.
        payload: as ``enqueue``'s: bytes as they are, str as UTF-8, else JSON.
        cron: a five-field cron expression (minute hour day-of-month month
            day-of-week), read in ``time_zone``.
        interval_s: or a fixed interval (seconds or a timedelta, at least 1 s),
            counted from creation.
        time_zone: IANA name of the cron expression's time zone. Across a DST
            change, a skipped local time fires once at the instant it names
            with the offset before the change; a repeated one fires once, at
            its first occurrence.
        overlap: what a tick does while the previous tick's job is unfinished
            (an ``OverlapPolicy`` or its value: ``"skip"``, ``"buffer_one"``,
            ``"allow_all"``).
        catchup_window_s: ticks missed while no server ran fire if at most this
            late (1 s to 7 days; 0 is refused); None means the server's default, 60 s.
        headers: metadata for the handler (at most 64 entries).
        max_attempts: runs of each job before it ends FAILED.
        paused: create it paused.
        priority: of each tick's job, -100 to 100 (0 by default): among due
            jobs of its type a higher priority is handed out first.
        limit_key: of each tick's job (a customer id...): it runs under the
            type's per-key limits, in its key's turn; not with a priority.
        idempotency_key: a repeated create with the same key (per job type)
            returns the schedule the first created. A fresh key is generated
            when omitted.

    Returns:
        The stored schedule (or the one an earlier call with the key created).

    Raises:
        InvalidSchedule: the server rejected an argument; ``field`` names it.
        ValueError: both ``cron`` and ``interval_s`` were given, or an unknown overlap.
    """
    if cron is not None and interval_s is not None:
        raise ValueError("give cron or interval_s, not both")
    message = pb.Schedule(
        name=name,
        time_zone=time_zone,
        template=pb.JobTemplate(
            type=type,
            payload=encode_payload(payload),
            headers=dict(headers or {}),
            max_attempts=max_attempts,
            priority=priority,
            limit_key=limit_key,
        ),
        overlap=_OVERLAP_TO_PROTO[OverlapPolicy(overlap)],
        catchup_window_ms=_window_ms(catchup_window_s),
        paused=paused,
    )
    if cron is not None:
        message.cron = cron
    if interval_s is not None:
        message.interval_ms = _ms(interval_s)
    key = new_idempotency_key() if idempotency_key is None else idempotency_key
    return Unary(
        "CreateSchedule",
        pb.CreateScheduleRequest(schedule=message, idempotency_key=key),
        _schedule,
        stub=_STUB,
        refine=_refine(None),
    )


def list_schedules() -> Unary[list[Schedule]]:
    """Every schedule, ordered by id (a server lists at most 1,000)."""
    return Unary(
        "ListSchedules",
        pb.ListSchedulesRequest(),
        lambda response: [schedule_from_proto(s) for s in response.schedules],
        stub=_STUB,
    )


def get_schedule(schedule_id: str) -> Unary[Schedule]:
    """The schedule as it is now, with its counters and next tick.

    Raises:
        ScheduleNotFound: no such schedule.
    """
    return _by_id("GetSchedule", pb.GetScheduleRequest(id=schedule_id), schedule_id, _schedule)


def pause_schedule(schedule_id: str) -> Unary[Schedule]:
    """Stop firing the schedule; pausing a paused schedule changes nothing.

    Raises:
        ScheduleNotFound: no such schedule.
    """
    return _by_id("PauseSchedule", pb.PauseScheduleRequest(id=schedule_id), schedule_id, _schedule)


def resume_schedule(schedule_id: str) -> Unary[Schedule]:
    """Fire a paused schedule again, from now on: ticks that fell while it was paused never fire.

    Resuming a running schedule changes nothing.

    Raises:
        ScheduleNotFound: no such schedule.
    """
    request = pb.ResumeScheduleRequest(id=schedule_id)
    return _by_id("ResumeSchedule", request, schedule_id, _schedule)


def trigger_schedule(schedule_id: str, *, idempotency_key: str | None = None) -> Unary[str]:
    """Enqueue the schedule's job now, outside its ticks (paused or not, whatever its overlap).

    Retried when the server is unavailable, safely: every attempt carries the
    same idempotency key, and the server answers a repeat with the job the
    first attempt enqueued (while that job is kept).

    Args:
        schedule_id: the schedule.
        idempotency_key: a repeated trigger of the schedule with the same key
            returns the first one's job (up to 200 characters). A fresh key is
            generated when omitted.

    Returns:
        The id of the job enqueued.

    Raises:
        ScheduleNotFound: no such schedule.
    """
    key = new_idempotency_key() if idempotency_key is None else idempotency_key
    request = pb.TriggerScheduleRequest(id=schedule_id, idempotency_key=key)
    return Unary("TriggerSchedule", request, _job_id, stub=_STUB, refine=_refine(schedule_id))


def delete_schedule(schedule_id: str) -> Unary[None]:
    """Delete the schedule; the jobs it enqueued stay.

    Raises:
        ScheduleNotFound: no such schedule.
    """

    def recheck(error: JobQueueClientError) -> Unary[None] | None:
        # A retry finding nothing to delete follows a first attempt whose reply
        # was lost: most likely that attempt deleted it, which is what was asked.
        # Any answer from the server (a cheap list) confirms it is reachable again.
        if not isinstance(error, ScheduleNotFound):
            return None
        return Unary("ListSchedules", pb.ListSchedulesRequest(), _nothing, stub=_STUB)

    request = pb.DeleteScheduleRequest(id=schedule_id)
    return Unary(
        "DeleteSchedule",
        request,
        _nothing,
        stub=_STUB,
        refine=_refine(schedule_id),
        recheck=recheck,
    )


def schedule_from_proto(message: pb.Schedule) -> Schedule:
    """The SDK's ``Schedule`` for a wire message."""
    template = message.template
    return Schedule(
        id=message.id,
        name=message.name,
        template=JobTemplate(
            type=template.type,
            payload=template.payload,
            headers=dict(template.headers),
            max_attempts=template.max_attempts if template.HasField("max_attempts") else None,
            priority=template.priority,
            limit_key=template.limit_key if template.HasField("limit_key") else None,
        ),
        cron=message.cron if message.HasField("cron") else None,
        interval_s=message.interval_ms / 1000 if message.HasField("interval_ms") else None,
        time_zone=message.time_zone or "UTC",
        overlap=_OVERLAP_FROM_PROTO.get(message.overlap, OverlapPolicy.SKIP),
        catchup_window_s=message.catchup_window_ms / 1000,
        paused=message.paused,
        created_at=_time(message.created_at_ms),
        last_tick_at=_time(message.last_tick_ms) if message.HasField("last_tick_ms") else None,
        next_tick_at=_time(message.next_tick_ms) if message.HasField("next_tick_ms") else None,
        last_job_id=message.last_job_id if message.HasField("last_job_id") else None,
        fired=message.fired,
        skipped_overlap=message.skipped_overlap,
        missed=message.missed,
    )


def _by_id(method: str, request: Any, schedule_id: str, read: Callable[[Any], R]) -> Unary[R]:
    return Unary(method, request, read, stub=_STUB, refine=_refine(schedule_id))


def _schedule(response: Any) -> Schedule:
    return schedule_from_proto(response.schedule)


def _job_id(response: Any) -> str:
    return str(response.job_id)


def _nothing(response: Any) -> None:
    return None


def _refine(schedule_id: str | None) -> Callable[[JobQueueClientError], JobQueueClientError]:
    """The schedule's own errors for NOT_FOUND and INVALID_ARGUMENT; others pass unchanged."""

    def refine(error: JobQueueClientError) -> JobQueueClientError:
        if type(error) is JobNotFound and schedule_id is not None:
            return ScheduleNotFound(error.message, code=error.code, schedule_id=schedule_id)
        if type(error) is InvalidJob:
            # The server's message starts with the field at fault: "cron: invalid ...".
            wire, colon, _ = error.message.partition(": ")
            field = _SDK_NAMES.get(wire, wire) if colon and " " not in wire else "schedule"
            return InvalidSchedule(error.message, code=error.code, field=field)
        return error

    return refine


def _ms(value: timedelta | float) -> int:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return round(seconds * 1000)


def _window_ms(value: timedelta | float | None) -> int:
    # 0 on the wire means the server's default: a window of 0 given here must
    # not turn into 60 s behind the caller's back, so it goes out as -1, which
    # the server refuses as it refuses any window under 1 s.
    if value is None:
        return 0
    return _ms(value) or -1


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
