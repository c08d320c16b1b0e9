"""The schedule port and its use case: manage schedules, and fire what is due, leaderless.

Every server runs ``ScheduleService.fire_due`` on a timer. Each reads the due
schedules and the store's time, plans the same step (``plan``) and asks the
store to apply it with ``advance``, which checks the schedule's version and
enqueues the tick's job in one atomic step: of any number of servers racing
for a tick, exactly one applies it, and a server killed mid-step leaves the
tick to the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ._errors import InvalidJob
from ._headers import validate_headers
from ._job import Job, JobStatus
from ._ports import Clock, IdGenerator, JobStore
from ._schedules import (
    DEFAULT_CATCHUP_WINDOW_MS,
    MAX_TRIGGER_KEY_LENGTH,
    CronParser,
    JobTemplate,
    OverlapPolicy,
    Schedule,
    ScheduleNotFound,
    plan,
    tick_key,
    trigger_key,
    validate_schedule,
)
from ._validation import (
    Limits,
    validate_idempotency_key,
    validate_job_id,
    validate_limit_key,
    validate_max_attempts,
    validate_payload,
    validate_priority,
    validate_type,
)

MAX_ROUNDS = 100
"""Most steps one ``fire_due`` call takes per schedule-batch round: it never spins for ever."""


@dataclass(frozen=True, slots=True)
class Advance:
    """What ``ScheduleStore.advance`` did: ``applied`` False when the state had moved on.

    ``job`` is the job it enqueued, None when it enqueued nothing (no tick,
    or the overlap policy held the tick back: then ``held_back`` is True).
    """

    applied: bool
    job: Job | None = None
    held_back: bool = False


@runtime_checkable
class ScheduleStore(Protocol):
    """Durable home of schedules, beside the jobs they enqueue. Every method is atomic.

    Times are the store's own clock's (Redis's TIME for Redis).
    """

    async def create(self, schedule: Schedule, *, idempotency_key: str | None = None) -> Schedule:
        """Store a new schedule; stamps ``created_at`` and ``anchor_ms`` with the store's now.

        May rewrite the id (a sharded store routes it); returns what it stored.
        With ``idempotency_key`` (per job type of the template), a key stored by
        an earlier create within ``SCHEDULE_KEY_WINDOW_MS`` whose schedule still
        exists returns that schedule and stores nothing; else the key is kept
        with the new schedule, in the same atomic step.
        """
        ...

    async def get(self, schedule_id: str) -> Schedule | None: ...

    async def list_schedules(self, *, limit: int = 1_000) -> list[Schedule]:
        """Schedules ordered by id, at most ``limit``."""
        ...

    async def set_paused(self, schedule_id: str, paused: bool) -> Schedule:
        """Pause or resume. A resume re-anchors at the store's now: ticks while paused never fire.

        Raises ScheduleNotFound.
        """
        ...

    async def delete(self, schedule_id: str) -> bool:
        """Forget a schedule; False if there was none. Jobs it enqueued stay."""
        ...

    async def due(self, *, limit: int) -> tuple[int, list[Schedule]]:
        """The store's now and up to ``limit`` unpaused schedules whose next tick has come.

        A schedule not yet planned (``next_tick_ms`` None) counts as due.
        """
        ...

    async def advance(
        self,
        schedule_id: str,
        *,
        version: int,
        tick_ms: int | None,
        last_tick_ms: int | None,
        next_tick_ms: int | None,
        missed: int,
        job: Job | None,
    ) -> Advance:
        """Apply one planned step, only if ``version`` is still current and the schedule runs.

        With a tick (``tick_ms`` not after the store's now), enqueue ``job``
        (whose idempotency key names the tick) unless the overlap policy holds
        it back given the state of the schedule's previous job. Then record
        the last tick, the next one, the counters, and a new version.
        """
        ...


class ScheduleService:
    """Create and manage schedules, and fire those due; inputs are validated before a store."""

    def __init__(
        self,
        schedules: ScheduleStore,
        jobs: JobStore,
        *,
        cron: CronParser,
        clock: Clock,
        ids: IdGenerator,
        limits: Limits | None = None,
    ) -> None:
        self._schedules = schedules
        self._jobs = jobs
        self._cron = cron
        self._clock = clock
        self._ids = ids
        self._limits = limits or Limits()

    async def create(
        self,
        *,
        name: str,
        template: JobTemplate,
        cron: str | None = None,
        interval_ms: int | None = None,
        time_zone: str = "UTC",
        overlap: OverlapPolicy = OverlapPolicy.SKIP,
        catchup_window_ms: int = DEFAULT_CATCHUP_WINDOW_MS,
        paused: bool = False,
        idempotency_key: str | None = None,
    ) -> Schedule:
        """Validate and store a schedule; raises InvalidJob naming the field at fault.

        A retry with the ``idempotency_key`` of an earlier create returns the
        schedule that one stored (see ``ScheduleStore.create``).
        """
        validate_type(template.type)
        validate_payload(template.payload, self._limits)
        validate_max_attempts(template.max_attempts, self._limits)
        validate_priority(template.priority)
        validate_limit_key(template.limit_key, priority=template.priority)
        validate_idempotency_key(idempotency_key)
        # The same rule as a job's headers: a fired job must be one add accepts.
        headers = validate_headers(template.headers)
        schedule = Schedule(
            id=self._ids.new_id(),
            name=name,
            template=dataclasses.replace(template, headers=headers),
            cron=cron.strip() if cron is not None else None,
            interval_ms=interval_ms,
            time_zone=time_zone,
            overlap=overlap,
            catchup_window_ms=catchup_window_ms,
            paused=paused,
        )
        validate_schedule(schedule, self._cron)
        return await self._schedules.create(schedule, idempotency_key=idempotency_key)

    async def get(self, schedule_id: str) -> Schedule:
        found = await self._schedules.get(schedule_id_of(schedule_id))
        if found is None:
            raise ScheduleNotFound(schedule_id)
        return found

    async def list_schedules(self, *, limit: int = 1_000) -> list[Schedule]:
        return await self._schedules.list_schedules(limit=max(1, min(limit, 1_000)))

    async def pause(self, schedule_id: str) -> Schedule:
        return await self._schedules.set_paused(schedule_id_of(schedule_id), True)

    async def resume(self, schedule_id: str) -> Schedule:
        return await self._schedules.set_paused(schedule_id_of(schedule_id), False)

    async def delete(self, schedule_id: str) -> None:
        if not await self._schedules.delete(schedule_id_of(schedule_id)):
            raise ScheduleNotFound(schedule_id)

    async def trigger(self, schedule_id: str, *, idempotency_key: str | None = None) -> Job:
        """Enqueue the template's job now, outside the ticks: overlap and pause do not apply.

        With ``idempotency_key``, the job carries ``trigger_key(id, key)`` as its
        own idempotency key, so a retry returns the job the first call enqueued
        (the job store decides that atomically, for as long as it keeps the job).
        """
        if idempotency_key is not None:
            # Its own length rule first: the job key's (1 to 256) would name the wrong bound.
            if not 1 <= len(idempotency_key) <= MAX_TRIGGER_KEY_LENGTH:
                raise InvalidJob(
                    "idempotency_key", f"must be 1 to {MAX_TRIGGER_KEY_LENGTH} characters"
                )
            validate_idempotency_key(idempotency_key)
        schedule = await self.get(schedule_id)
        key = None if idempotency_key is None else trigger_key(schedule.id, idempotency_key)
        [stored] = await self._jobs.add([self._job(schedule, None, key=key)])
        return stored

    async def fire_due(self, *, limit: int = 100) -> list[Job]:
        """Fire every tick due by the store's clock; returns the jobs this call enqueued.

        Safe to run on every server at once: a step planned from a state that
        another server already moved is refused by the store, and re-planned
        from the new state on the next round.
        """
        fired: list[Job] = []
        for _ in range(MAX_ROUNDS):
            now, due = await self._schedules.due(limit=limit)
            if not due:
                break
            moved = False
            for schedule in due:
                step = plan(schedule, now, self._cron)
                job = None if step.tick_ms is None else self._job(schedule, step.tick_ms)
                result = await self._schedules.advance(
                    schedule.id,
                    version=schedule.version,
                    tick_ms=step.tick_ms,
                    last_tick_ms=step.last_tick_ms,
                    next_tick_ms=step.next_tick_ms,
                    missed=step.missed,
                    job=job,
                )
                moved = moved or result.applied
                if result.job is not None:
                    fired.append(result.job)
            if not moved:
                break
        return fired

    def _job(self, schedule: Schedule, tick_ms: int | None, *, key: str | None = None) -> Job:
        now = self._clock.now_ms()
        template = schedule.template
        return Job(
            id=self._ids.new_id(),
            type=template.type,
            payload=template.payload,
            status=JobStatus.PENDING,
            # Due "now": stores read a job due at its creation as due at their own now.
            execution_time_ms=now,
            created_at=now,
            updated_at=now,
            attempts=0,
            max_attempts=template.max_attempts,
            idempotency_key=key if tick_ms is None else tick_key(schedule.id, tick_ms),
            headers=dict(template.headers),
            priority=template.priority,
            limit_key=template.limit_key,
        )


def schedule_id_of(schedule_id: str) -> str:
    """A schedule's id checked like a job's (both are UUIDs): a malformed one is bad
    input (INVALID_ARGUMENT), not a schedule that happens to be missing."""
    return validate_job_id(schedule_id)
