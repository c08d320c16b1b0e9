"""The SDK's values for recurring schedules: what the schedule calls return.

Frozen dataclasses and a plain enum, as for jobs: users never see protobuf
messages. Durations are float seconds (``interval_s``, ``catchup_window_s``)
and instants timezone-aware UTC datetimes, as everywhere in the SDK; the wire
carries integer milliseconds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class OverlapPolicy(enum.Enum):
    """What a tick does while the job of the schedule's previous tick has not finished.

    SKIP enqueues nothing while it is PENDING or RUNNING. BUFFER_ONE enqueues
    nothing while it is PENDING, so at most one job waits behind a running one.
    ALLOW_ALL always enqueues. The values are what the CLI takes and shows.
    """

    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    ALLOW_ALL = "allow_all"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobTemplate:
    """The job each tick of a schedule enqueues.

    Attributes:
        type: which handler runs it.
        payload: the bytes handed to the handler.
        headers: metadata for the handler.
        max_attempts: the producer's limit, or ``None`` to leave it to the handler.
        priority: -100 to 100; each job is claimed before lower priorities of its type.
        limit_key: each job runs under its type's per-key limits, in its key's turn.
    """

    type: str
    payload: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    max_attempts: int | None = None
    priority: int = 0
    limit_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view: the payload as UTF-8 text (undecodable bytes escaped)."""
        return {
            "type": self.type,
            "payload": self.payload.decode("utf-8", errors="backslashreplace"),
            "headers": dict(self.headers),
            "max_attempts": self.max_attempts,
            "priority": self.priority,
            "limit_key": self.limit_key,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A recurring schedule as the server last reported it.

    Exactly one of ``cron`` and ``interval_s`` is set.

    Attributes:
        id: assigned by the server.
        name: a label for people.
        template: the job each tick enqueues.
        cron: a five-field cron expression, read in ``time_zone``.
        interval_s: or a fixed interval in seconds, counted from creation or
            the last resume.
        time_zone: the IANA time zone of ``cron``.
        overlap: what a tick does while the previous tick's job is unfinished.
        catchup_window_s: ticks missed while no server ran fire if at most this late.
        paused: a paused schedule fires nothing (``trigger_schedule`` still works).
        created_at: when it was created, in UTC.
        last_tick_at: the last tick handled (fired, held back or missed).
        next_tick_at: the next tick; ``None`` while paused, not yet planned, or
            when the cron expression never matches again.
        last_job_id: the job of the last tick fired.
        fired: ticks that enqueued a job.
        skipped_overlap: ticks the overlap policy held back.
        missed: ticks older than the catch-up window when a server came to them.
    """

    id: str
    name: str
    template: JobTemplate
    cron: str | None = None
    interval_s: float | None = None
    time_zone: str = "UTC"
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catchup_window_s: float = 60.0
    paused: bool = False
    created_at: datetime
    last_tick_at: datetime | None = None
    next_tick_at: datetime | None = None
    last_job_id: str | None = None
    fired: int = 0
    skipped_overlap: int = 0
    missed: int = 0

    @property
    def every(self) -> str:
        """The schedule's rule as people read it: the cron expression, or ``every 30s``."""
        if self.cron is not None:
            return self.cron
        return f"every {_seconds(self.interval_s or 0.0)}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view with ISO 8601 times."""
        return {
            "id": self.id,
            "name": self.name,
            "cron": self.cron,
            "interval_s": self.interval_s,
            "time_zone": self.time_zone,
            "template": self.template.to_dict(),
            "overlap": self.overlap.value,
            "catchup_window_s": self.catchup_window_s,
            "paused": self.paused,
            "created_at": self.created_at.isoformat(),
            "last_tick_at": _iso(self.last_tick_at),
            "next_tick_at": _iso(self.next_tick_at),
            "last_job_id": self.last_job_id,
            "fired": self.fired,
            "skipped_overlap": self.skipped_overlap,
            "missed": self.missed,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60))


def _seconds(value: float) -> str:
    """A duration as the CLI's ``--every`` takes it: ``1h``, ``1h30m``, ``90m15s``, ``1.5s``."""
    parts: list[str] = []
    whole, fraction = divmod(value, 1)
    rest = int(whole)
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    if rest or fraction or not parts:
        parts.append(f"{rest + fraction:g}s")
    return "".join(parts)
