"""Value objects: the job, its status, leases, queries and statistics."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ._frozen import slot_builder, with_slot_init
from ._unique import UniqueRule


class JobStatus(enum.IntEnum):
    """Where a job is in its life. Values are the wire numbers of the API's ``JobStatus``."""

    PENDING = 1
    RUNNING = 2
    COMPLETED = 3
    FAILED = 4
    CANCELLED = 5

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


@with_slot_init  # built twice per enqueued job: see _frozen.py
@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A unit of work and everything known about its execution so far.

    Times are milliseconds since the Unix epoch, as on the wire. ``max_attempts``
    is ``None`` when the producer left it to the worker's handler settings.
    """

    id: str
    type: str
    payload: bytes
    status: JobStatus
    execution_time_ms: int
    created_at: int
    updated_at: int
    attempts: int = 0
    max_attempts: int | None = None
    last_error: str | None = None
    result: bytes | None = None
    cancel_requested: bool = False
    idempotency_key: str | None = None
    # Among due jobs of its type a higher priority is claimed first, FIFO
    # (by due time) within one; -100..100 (_validation.py).
    priority: int = 0
    # The producer's key for per-key limits (a customer id...): the type's
    # per-key limits apply to each key apart, and claims take keys in turn
    # (see _gates.py); None: no key.
    limit_key: str | None = None
    # The unique rule it was enqueued with (see _unique.py); its key is locked
    # while the job is in the rule's scope.
    unique: UniqueRule | None = None
    # What its handler last reported (Job.progress in the SDK): 0..1 and a note.
    progress: float | None = None
    progress_message: str | None = None
    # Context carried from the producer (a trace's traceparent...), see _headers.py.
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def unique_key(self) -> str | None:
        return None if self.unique is None else self.unique.key


STORED_JOB_FIELDS = (
    "id",
    "type",
    "payload",
    "status",
    "execution_time_ms",
    "created_at",
    "updated_at",
    "attempts",
    "max_attempts",
    "last_error",
    "result",
    "cancel_requested",
    "idempotency_key",
    "priority",
    "limit_key",
    "unique",
    "progress",
    "progress_message",
    "headers",
)
"""The parameters of ``stored_job``, in this order (named here, so that a new
field or a reordered ``Job`` cannot shift them)."""

stored_job: Callable[..., Job] = slot_builder(
    Job, STORED_JOB_FIELDS, {name: name for name in STORED_JOB_FIELDS}
)
"""A ``Job`` from every field's value, positionally, each slot written once.

For adapters that read a job the store or the wire already holds (every lease
a claim hands out passes through one): the keyword call cost more than the
rest of their mapping. The caller passes values it decoded, not checked:
they were checked when the job was enqueued.
"""


@dataclass(frozen=True, slots=True)
class Lease:
    """A claimed job, owned by one worker until ``deadline_ms`` unless renewed.

    ``token`` is unique per claim: only its holder may settle or renew the job.
    """

    job: Job
    token: str
    deadline_ms: int


class LeaseState(enum.Enum):
    """What renewing a lease found."""

    ACTIVE = "active"
    CANCEL_REQUESTED = "cancel_requested"
    LOST = "lost"


class OutcomeKind(enum.Enum):
    """How a worker settles a leased job."""

    COMPLETE = "complete"
    RETRY = "retry"
    FAIL = "fail"
    RELEASE = "release"
    CANCELLED = "cancelled"


@with_slot_init  # one per settled job, in the worker and again in the server
@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """A worker's verdict on one leased job, applied by ``JobStore.settle``.

    COMPLETE stores ``result``; RETRY puts the job back to PENDING, due
    ``retry_delay_ms`` after the store's own now (a duration, never an absolute
    time, so a worker's skewed clock cannot move it), with ``error`` recorded;
    FAIL ends it FAILED with ``error``; RELEASE hands it back untried (graceful
    shutdown); CANCELLED confirms that a requested cancellation stopped the
    handler. A RETRY or RELEASE of a job whose cancellation was requested ends
    CANCELLED instead.
    """

    job_id: str
    token: str
    kind: OutcomeKind
    result: bytes | None = None
    error: str | None = None
    retry_delay_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobQuery:
    """A filter and a page position for listing jobs.

    ``cursor`` is the opaque ``next_cursor`` of the previous page, empty for the first.
    """

    type: str | None = None
    status: JobStatus | None = None
    limit: int = 100
    cursor: str = ""


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a listing; ``next_cursor`` is empty on the last page."""

    jobs: list[Job]
    next_cursor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeStats:
    """Counts of the jobs of one type that the store holds now.

    ``pending`` are due now, ``scheduled`` wait for a future time; terminal
    counts cover the retention window only. ``paused``: claims skip the type
    (``TypeGates.pause_type``); a paused type is listed even with no jobs.
    ``oldest_pending_age_ms``: how long the earliest due PENDING job (of each
    queue a claim reads) has waited by the store's clock, since it was due or,
    if it was due before it was made, since it was made (0 when none is due).
    ``workers``: live
    workers that handle the type (``PresenceStore``); a type listed with none
    holds only jobs nobody is there to run.
    """

    type: str
    pending: int = 0
    scheduled: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    paused: bool = False
    oldest_pending_age_ms: int = 0
    workers: int = 0

    @property
    def unattended(self) -> bool:
        """Due jobs wait and no live worker handles the type: they will not start on their own."""
        return self.pending > 0 and self.workers == 0


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Per-type counts plus their totals.

    A store counts a bounded number of types per call (the first by name), so
    stats cost the same with any number of types; ``omitted_types`` says how
    many more hold jobs, and ``total`` covers the listed ones.
    """

    types: list[TypeStats] = field(default_factory=list)
    omitted_types: int = 0

    @property
    def total(self) -> TypeStats:
        def add(attr: str) -> int:
            return sum(getattr(t, attr) for t in self.types)

        return TypeStats(
            type="",
            pending=add("pending"),
            scheduled=add("scheduled"),
            running=add("running"),
            completed=add("completed"),
            failed=add("failed"),
            cancelled=add("cancelled"),
            oldest_pending_age_ms=max((t.oldest_pending_age_ms for t in self.types), default=0),
        )
