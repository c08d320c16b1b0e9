"""Recurring schedules: the entity, its rules, and the pure computation of its ticks.

A schedule enqueues a job from its template at every *tick*: each match of a
cron expression in a time zone, or every ``interval_ms`` from its anchor.
Servers fire schedules without a leader: each one plans the same next step
from the stored state (``plan``) and the store applies it only if the state
is still the one it planned from (a version check), in the same atomic step
that enqueues the tick's job, so a tick fires once however many servers race.

Cron expressions are parsed by a library behind the ``CronParser`` port (the
domain stays standard-library only); the rules about time zones and DST are
here: cron runs on local wall-clock times, and a wall time maps to an
instant with ``fold=0``. So a wall time skipped by a spring-forward gap fires
once, at the instant it names with the offset before the gap (02:30 becomes
03:30 in New York); a wall time repeated by a fall-back fires once, at its
first occurrence; and ticks are strictly increasing instants, so a gap that
maps two wall times to one instant fires it once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._errors import InvalidJob, JobQueueError
from ._validation import has_control_characters

if TYPE_CHECKING:
    from datetime import datetime
    from zoneinfo import ZoneInfo

# datetime and zoneinfo are imported where a cron tick is computed: a worker
# imports the domain but fires no schedule, and zoneinfo (with its tz path
# lookups) is ~0.5 MiB of a worker's resident memory (docs/benchmarks.md).

MIN_INTERVAL_MS = 1_000
"""The shortest fixed interval: one second (cron's own granularity is a minute)."""
MAX_INTERVAL_MS = 366 * 24 * 3600 * 1000
MIN_CATCHUP_WINDOW_MS = 1_000
"""A tick may always fire up to a second late: servers poll, and a poll takes time."""
MAX_CATCHUP_WINDOW_MS = 7 * 24 * 3600 * 1000
DEFAULT_CATCHUP_WINDOW_MS = 60_000
MAX_NAME_LENGTH = 200
MAX_COUNTED_MISSES = 100_000
"""Most missed ticks one step walks and counts; a longer outage counts this many."""
SCHEDULE_KEY_WINDOW_MS = 24 * 3600 * 1000
"""How long a CreateSchedule idempotency key answers the schedule it created: a
day covers any client's retries after a lost reply, and the key then expires
(it also goes with its schedule when that is deleted)."""
MAX_TRIGGER_KEY_LENGTH = 200
"""A trigger's key becomes part of its job's idempotency key (``trigger_key``),
which must fit the 256 characters of any job's."""


class ScheduleNotFound(JobQueueError):
    """Raised when no schedule with the given id exists (never did, or was deleted)."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule {schedule_id} not found")
        self.schedule_id = schedule_id


class OverlapPolicy(enum.Enum):
    """What a tick does while the previous tick's job has not finished.

    SKIP: nothing while it is PENDING or RUNNING. BUFFER_ONE: nothing while it
    is PENDING (waiting), so at most one job waits behind a running one.
    ALLOW_ALL: always enqueue.
    """

    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    ALLOW_ALL = "allow_all"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobTemplate:
    """What each tick enqueues."""

    type: str
    payload: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    max_attempts: int | None = None
    priority: int = 0
    """As a job's: each tick's job is claimed before lower priorities of its type."""
    limit_key: str | None = None
    """As a job's: each job runs under its type's per-key limits, in its key's turn."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A recurring schedule and the state its store keeps for firing it.

    Exactly one of ``cron`` and ``interval_ms`` is set. Times are ms since the
    epoch by the store's clock. ``anchor_ms`` is when ticks start counting
    (creation, or the last resume); ``last_tick_ms`` the last tick handled
    (fired, skipped for overlap, or missed); ``next_tick_ms`` the next one,
    None until planned. ``version`` changes with every change of state: it is
    what makes a planned step apply once.
    """

    id: str
    name: str
    template: JobTemplate
    cron: str | None = None
    interval_ms: int | None = None
    time_zone: str = "UTC"
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catchup_window_ms: int = DEFAULT_CATCHUP_WINDOW_MS
    paused: bool = False
    created_at: int = 0
    anchor_ms: int = 0
    last_tick_ms: int | None = None
    next_tick_ms: int | None = None
    last_job_id: str | None = None
    version: int = 0
    fired: int = 0
    skipped_overlap: int = 0
    missed: int = 0


class CronRule(Protocol):
    """A parsed cron expression, stepping over naive local wall-clock times."""

    def walltimes_after(self, start: datetime) -> Iterator[datetime]:
        """Matching naive wall times strictly after ``start``, increasing."""
        ...


@runtime_checkable
class CronParser(Protocol):
    """Parses cron expressions; raises ValueError for an invalid one."""

    def parse(self, expression: str) -> CronRule: ...


@dataclass(frozen=True, slots=True)
class FirePlan:
    """One step of a schedule: fire ``tick_ms`` (or nothing), then wait for ``next_tick_ms``.

    ``last_tick_ms`` is the last tick the step handles; ``missed`` counts ticks
    it skips because they are older than the catch-up window.
    """

    tick_ms: int | None
    last_tick_ms: int | None
    next_tick_ms: int | None
    missed: int


def zone(name: str) -> ZoneInfo:
    """The time zone named, or InvalidJob."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidJob("time_zone", f"unknown time zone {name!r}") from None


def ticks_after(schedule: Schedule, after_ms: int, cron: CronParser) -> Iterator[int]:
    """The schedule's ticks strictly after ``after_ms``, increasing, as instants in ms."""
    if schedule.interval_ms is not None:
        step = schedule.interval_ms
        k = max(0, (after_ms - schedule.anchor_ms) // step + 1)
        while True:
            tick = schedule.anchor_ms + k * step
            if tick > after_ms:
                yield tick
            k += 1
    from datetime import datetime, timedelta

    assert schedule.cron is not None
    tz = zone(schedule.time_zone)
    rule = cron.parse(schedule.cron)
    start = datetime.fromtimestamp(after_ms / 1000, tz).replace(
        tzinfo=None, second=0, microsecond=0
    )
    # A start in a repeated hour (fold=1) lies after its fold=0 twins: begin an
    # hour early so no tick of the first pass is stepped over; the filter
    # below drops what is not after ``after_ms``.
    last = after_ms
    for wall in rule.walltimes_after(start - timedelta(hours=1)):
        instant = int(wall.replace(tzinfo=tz, fold=0).timestamp() * 1000)
        if instant > last:
            last = instant
            yield instant


def plan(schedule: Schedule, now_ms: int, cron: CronParser) -> FirePlan:
    """The next step for a schedule at ``now_ms`` (the store's time).

    Ticks since the last one handled that are older than the catch-up window
    are missed (counted, not fired); the first tick within the window fires.
    A step fires at most one tick: if more are due, the next step fires the
    next one (each is its own atomic step, each with its own job key).
    """
    after = schedule.anchor_ms if schedule.last_tick_ms is None else schedule.last_tick_ms
    oldest_allowed = now_ms - schedule.catchup_window_ms
    missed = 0
    last_missed: int | None = None
    ticks = ticks_after(schedule, after, cron)
    if schedule.interval_ms is not None and oldest_allowed > after:
        # Count the missed interval ticks arithmetically, then step past them.
        step, anchor = schedule.interval_ms, schedule.anchor_ms
        first_k = (after - anchor) // step + 1  # the first tick after the last one handled
        in_window_k = -(-(oldest_allowed - anchor) // step)  # the first within the window
        if in_window_k > first_k:
            missed = in_window_k - first_k
            last_missed = anchor + (in_window_k - 1) * step
            ticks = ticks_after(schedule, last_missed, cron)
    for tick in ticks:
        if tick > now_ms:
            last = last_missed if last_missed is not None else schedule.last_tick_ms
            return FirePlan(None, last, tick, missed)
        if tick >= oldest_allowed:
            return FirePlan(tick, tick, next(ticks, None), missed)
        missed += 1
        last_missed = tick
        if missed >= MAX_COUNTED_MISSES:
            return FirePlan(None, last_missed, next(ticks, None), missed)
    last = last_missed if last_missed is not None else schedule.last_tick_ms
    return FirePlan(None, last, None, missed)


def tick_key(schedule_id: str, tick_ms: int) -> str:
    """The idempotency key of a tick's job: one job per schedule and tick, whoever fires it."""
    return f"schedule:{schedule_id}:{tick_ms}"


def trigger_key(schedule_id: str, key: str) -> str:
    """The idempotency key of a triggered job: a retried trigger with the same key finds it.

    A tick's key ends in digits and never holds ``:trigger:``, so the two never meet.
    """
    return f"schedule:{schedule_id}:trigger:{key}"


def validate_schedule(schedule: Schedule, cron: CronParser) -> None:
    """Raise InvalidJob for a schedule that breaks a rule (the service checks the template)."""
    if not schedule.name or len(schedule.name) > MAX_NAME_LENGTH:
        raise InvalidJob("name", f"must be 1 to {MAX_NAME_LENGTH} characters")
    if has_control_characters(schedule.name):
        raise InvalidJob("name", "must not contain control characters")
    if (schedule.cron is None) == (schedule.interval_ms is None):
        raise InvalidJob("cron", "give exactly one of a cron expression and an interval")
    if schedule.interval_ms is not None and not (
        MIN_INTERVAL_MS <= schedule.interval_ms <= MAX_INTERVAL_MS
    ):
        raise InvalidJob("interval_ms", f"must be {MIN_INTERVAL_MS}..{MAX_INTERVAL_MS}")
    if schedule.cron is not None:
        # Five fields, as documented: a parser may read a sixth as seconds (cronsim
        # does), which would fire every second what was meant every minute.
        if len(schedule.cron.split()) != 5:
            raise InvalidJob(
                "cron",
                "give five fields (minute hour day-of-month month day-of-week), "
                f"not {len(schedule.cron.split())}",
            )
        try:
            cron.parse(schedule.cron)
        except ValueError as error:
            raise InvalidJob("cron", f"invalid cron expression: {error}") from None
    zone(schedule.time_zone)
    if not _is_iana_zone(schedule.time_zone):
        raise InvalidJob(
            "time_zone",
            f"{schedule.time_zone!r} is not an IANA time zone name (such as Europe/Paris)",
        )
    if not MIN_CATCHUP_WINDOW_MS <= schedule.catchup_window_ms <= MAX_CATCHUP_WINDOW_MS:
        raise InvalidJob(
            "catchup_window_ms", f"must be {MIN_CATCHUP_WINDOW_MS}..{MAX_CATCHUP_WINDOW_MS}"
        )


_HOST_ZONES = ("localtime", "Factory", "posixrules")
"""Names a zone database may load that are no place: ``localtime`` is each host's own
zone, so servers in different zones would plan different ticks of one schedule."""


def _is_iana_zone(name: str) -> bool:
    """Whether ``name`` is a zone of the IANA database, by the list the host knows.

    ``ZoneInfo`` also loads host files (``localtime``) and the ``posix/`` and
    ``right/`` copies; with no list at all (no zone database to walk), what
    loads is taken.
    """
    if name in _HOST_ZONES or name.startswith(("posix/", "right/")):
        return False
    names = _iana_names()
    return not names or name in names


@cache
def _iana_names() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())
