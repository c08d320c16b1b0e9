"""The SDK's own values: what calls return, and what ``enqueue_many`` takes.

They are frozen dataclasses and a plain enum, so users never see protobuf
messages, and a ``Job`` can be logged, compared and kept without surprises.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ._renamed import renamed


class JobStatus(enum.Enum):
    """Where a job is in its life. The values are the lower-case names, as the CLI shows them."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED: the job will not change again."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class OnConflict(enum.Enum):
    """What an enqueue with a held ``unique_key`` gets (see ``JobClient.enqueue``)."""

    RETURN_EXISTING = "return_existing"
    """Store nothing; return the job that holds the key."""
    REJECT = "reject"
    """Store nothing; raise ``JobAlreadyExists`` naming the holder."""
    REPLACE = "replace"
    """Cancel a PENDING holder and store this job; a RUNNING holder raises ``JobAlreadyExists``."""


UniqueFor = str | timedelta
"""How long a holder keeps its unique key: ``"pending"`` (until claimed),
``"active"`` (until finished; the default), or a ``timedelta``: a debounce
window after the holder's enqueue, while it is still pending."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A job as the server last reported it.

    Attributes:
        id: the server-assigned id (a UUID).
        type: which handler runs it.
        payload: the bytes handed to the handler (see ``payload_json``).
        status: where the job is in its life.
        run_at: when it is (or was) due, in UTC.
        created_at: when it was enqueued, in UTC.
        updated_at: its latest change, in UTC.
        attempts: how many times a worker has started it.
        max_attempts: the producer's limit, or ``None`` when left to the handler.
        last_error: the error of the latest failed attempt.
        result: the handler's return value as bytes, once COMPLETED (see ``json``).
        cancel_requested: a cancel was asked while it ran; its worker was told.
        idempotency_key: the key it was enqueued with.
        unique_key: the unique key it was enqueued with.
        progress: what its handler last reported, 0 to 1 (``None`` before any report).
        progress_message: the note that came with ``progress``.
        headers: the headers it was enqueued with (a trace's ``traceparent``...).
        priority: -100 to 100; among due jobs of its type a higher one runs first.
        limit_key: the key its type's per-key limits count it under, if any.
    """

    id: str
    type: str
    payload: bytes
    status: JobStatus
    run_at: datetime
    created_at: datetime
    updated_at: datetime
    attempts: int
    max_attempts: int | None = None
    last_error: str | None = None
    result: bytes | None = None
    cancel_requested: bool = False
    idempotency_key: str | None = None
    unique_key: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    priority: int = 0
    limit_key: str | None = None

    @property
    def is_finished(self) -> bool:
        """True once the job is COMPLETED, FAILED or CANCELLED."""
        return self.status.is_terminal

    def json(self) -> Any:
        """The result decoded as JSON (a worker returning a dict stores it so).

        Returns ``None`` when there is no result. Raises ``ValueError`` when the
        result is not JSON.
        """
        if self.result is None:
            return None
        return json.loads(self.result)

    def payload_json(self) -> Any:
        """The payload decoded as JSON; ``None`` for an empty payload.

        Raises ``ValueError`` when the payload is not JSON.
        """
        if not self.payload:
            return None
        return json.loads(self.payload)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view: bytes as UTF-8 text (undecodable bytes escaped), ISO 8601 times."""
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status.value,
            "payload": _text(self.payload),
            "run_at": self.run_at.isoformat(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "last_error": self.last_error,
            "result": None if self.result is None else _text(self.result),
            "cancel_requested": self.cancel_requested,
            "idempotency_key": self.idempotency_key,
            "unique_key": self.unique_key,
            "progress": self.progress,
            "progress_message": self.progress_message,
            "priority": self.priority,
            "limit_key": self.limit_key,
        }


def _text(data: bytes) -> str:
    # Payloads are usually UTF-8 (text or JSON); anything else stays readable
    # and lossless as backslash escapes rather than failing the whole output.
    return data.decode("utf-8", errors="backslashreplace")


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a listing, and the token that continues it (empty on the last page)."""

    jobs: tuple[Job, ...]
    next_page_token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeStats:
    """Counts of one job type's jobs; terminal counts cover the retention window only.

    Attributes:
        type: the job type (empty in the totals row).
        pending: PENDING and due now.
        scheduled: PENDING and due later.
        paused: workers are handed none of its jobs (``pause_type``); always
            False in the totals row.
        oldest_pending_age_s: how long the oldest due job has waited (0 when
            none is due); in the totals row, the largest.
        workers: live workers that handle the type (``list_workers``).
    """

    type: str
    pending: int
    scheduled: int
    running: int
    completed: int
    failed: int
    cancelled: int
    paused: bool = False
    oldest_pending_age_s: float = 0.0
    workers: int = 0

    @property
    def unattended(self) -> bool:
        """Due jobs wait and no live worker handles the type: nothing will run them."""
        return bool(self.type) and self.pending > 0 and self.workers == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "pending": self.pending,
            "scheduled": self.scheduled,
            "running": self.running,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "paused": self.paused,
            "oldest_pending_age_s": self.oldest_pending_age_s,
            "workers": self.workers,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    """Counts per job type (sorted by type) and their sums.

    A server lists at most 1,000 types; ``omitted_types`` says how many more
    hold jobs (``total`` sums the listed ones).
    """

    types: tuple[TypeStats, ...]
    total: TypeStats
    omitted_types: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "types": [row.to_dict() for row in self.types],
            "total": self.total.to_dict(),
            "omitted_types": self.omitted_types,
        }


Payload = bytes | bytearray | str | Mapping[str, Any] | list[Any] | int | float | bool | None
"""What ``enqueue`` accepts: bytes as is, str as UTF-8, anything else as compact JSON."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job of an ``enqueue_many`` batch; the fields mean what ``enqueue``'s arguments do.

    Example:
        >>> client.enqueue_many([JobSpec("send_email", {"to": "a@example.com"}), JobSpec("ping")])
    """

    type: str
    payload: Payload = None
    run_at: datetime | int | None = None
    delay_s: timedelta | float | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    unique_key: str | None = None
    on_conflict: OnConflict | str | None = None
    unique_for: UniqueFor | None = None
    headers: Mapping[str, str] | None = None
    priority: int = 0
    limit_key: str | None = None
    delay: InitVar[timedelta | float | None] = field(default=None, kw_only=True)
    """Deprecated name of ``delay_s``."""

    def __post_init__(self, delay: timedelta | float | None) -> None:
        if delay is not None:
            # renamed <- __post_init__ <- __init__ <- the user's call.
            chosen = renamed(
                "delay",
                delay,
                "delay_s",
                self.delay_s,
                given=self.delay_s is not None,
                stacklevel=4,
            )
            object.__setattr__(self, "delay_s", chosen)
