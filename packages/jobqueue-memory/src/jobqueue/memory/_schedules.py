"""The ScheduleStore port in process memory, beside a MemoryJobStore whose jobs it enqueues.

Each method changes its state before its first ``await`` (and the job
store's methods it awaits never suspend), so on one event loop each is
atomic, as the port requires: a step whose version is current bumps it
first, so no other step planned from the same state can apply.
"""

from __future__ import annotations

import dataclasses

from jobqueue.domain import (
    SCHEDULE_KEY_WINDOW_MS,
    Advance,
    Clock,
    Job,
    JobStatus,
    OverlapPolicy,
    Schedule,
    ScheduleNotFound,
    SystemClock,
)

from ._store import MemoryJobStore

_WAITING = frozenset({JobStatus.PENDING})
_UNFINISHED = frozenset({JobStatus.PENDING, JobStatus.RUNNING})


class MemoryScheduleStore:
    """Schedules held in memory; their jobs go to ``jobs``. Nothing survives a restart."""

    def __init__(self, jobs: MemoryJobStore, *, clock: Clock | None = None) -> None:
        # The same clock as the job store's: one store, one time.
        self._jobs = jobs
        self._clock = clock or SystemClock()
        self._schedules: dict[str, Schedule] = {}
        # Planned, with no tick left (a cron expression that never matches again).
        self._exhausted: set[str] = set()
        # Creates' idempotency keys, per job type (as Redis's sk:<type>/<key>):
        # the schedule's id and when the key expires.
        self._keys: dict[tuple[str, str], tuple[str, int]] = {}

    async def create(self, schedule: Schedule, *, idempotency_key: str | None = None) -> Schedule:
        now = self._clock.now_ms()
        slot = (schedule.template.type, idempotency_key or "")
        if idempotency_key is not None:
            # Expired keys go on every create: creates are rare, keys few.
            self._keys = {k: v for k, v in self._keys.items() if v[1] > now}
            prior = self._keys.get(slot)
            if prior is not None and prior[0] in self._schedules:
                return self._schedules[prior[0]]
        stored = dataclasses.replace(
            schedule,
            created_at=now,
            anchor_ms=now,
            last_tick_ms=None,
            next_tick_ms=None,
            last_job_id=None,
            version=0,
        )
        self._schedules[stored.id] = stored
        if idempotency_key is not None:
            self._keys[slot] = (stored.id, now + SCHEDULE_KEY_WINDOW_MS)
        return stored

    async def get(self, schedule_id: str) -> Schedule | None:
        return self._schedules.get(schedule_id)

    async def list_schedules(self, *, limit: int = 1_000) -> list[Schedule]:
        return [self._schedules[key] for key in sorted(self._schedules)[:limit]]

    async def set_paused(self, schedule_id: str, paused: bool) -> Schedule:
        schedule = self._schedules.get(schedule_id)
        if schedule is None:
            raise ScheduleNotFound(schedule_id)
        if schedule.paused == paused:
            return schedule
        if paused:
            changed = dataclasses.replace(schedule, paused=True, version=schedule.version + 1)
        else:
            changed = dataclasses.replace(
                schedule,
                paused=False,
                anchor_ms=self._clock.now_ms(),
                last_tick_ms=None,
                next_tick_ms=None,
                version=schedule.version + 1,
            )
            self._exhausted.discard(schedule_id)
        self._schedules[schedule_id] = changed
        return changed

    async def delete(self, schedule_id: str) -> bool:
        # Its create's key goes with it: a later create with that key creates anew.
        self._keys = {k: v for k, v in self._keys.items() if v[0] != schedule_id}
        return self._schedules.pop(schedule_id, None) is not None

    async def due(self, *, limit: int) -> tuple[int, list[Schedule]]:
        now = self._clock.now_ms()
        due = [
            schedule
            for schedule in self._schedules.values()
            if not schedule.paused
            and schedule.id not in self._exhausted
            and (schedule.next_tick_ms or 0) <= now
        ]
        due.sort(key=lambda schedule: (schedule.next_tick_ms or 0, schedule.id))
        return now, due[:limit]

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
        schedule = self._schedules.get(schedule_id)
        now = self._clock.now_ms()
        if (
            schedule is None
            or schedule.version != version
            or schedule.paused
            or (tick_ms is not None and tick_ms > now)
        ):
            return Advance(applied=False)
        # Taken before any await: a racing step planned from this version fails above.
        self._schedules[schedule_id] = dataclasses.replace(schedule, version=version + 1)
        enqueue = tick_ms is not None and job is not None
        if enqueue and schedule.last_job_id is not None:
            enqueue = not await self._busy(schedule.overlap, schedule.last_job_id)
        stored: Job | None = None
        if enqueue and job is not None:
            [stored] = await self._jobs.add([job])
        current = self._schedules[schedule_id]
        if next_tick_ms is None:
            self._exhausted.add(schedule_id)
        self._schedules[schedule_id] = dataclasses.replace(
            current,
            last_tick_ms=last_tick_ms,
            next_tick_ms=next_tick_ms,
            last_job_id=stored.id if stored is not None else current.last_job_id,
            fired=current.fired + (stored is not None),
            skipped_overlap=current.skipped_overlap + (tick_ms is not None and stored is None),
            missed=current.missed + missed,
        )
        return Advance(applied=True, job=stored, held_back=tick_ms is not None and stored is None)

    async def _busy(self, overlap: OverlapPolicy, last_job_id: str) -> bool:
        """Whether the previous tick's job holds this tick back under ``overlap``."""
        if overlap is OverlapPolicy.ALLOW_ALL:
            return False
        previous = await self._jobs.get(last_job_id)
        if previous is None:
            return False
        held = _WAITING if overlap is OverlapPolicy.BUFFER_ONE else _UNFINISHED
        return previous.status in held
