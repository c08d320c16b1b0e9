"""Worker presence: which workers are alive, what they handle and how busy they are.

A worker says it is alive with a heartbeat that carries its own time to live;
the store stamps it with the store's own time (``last_seen_at_ms``) and forgets
it once that time passes without another heartbeat. So a worker killed
outright (SIGKILL, a lost machine) leaves the list on its own, and nothing
depends on the clocks of the workers agreeing with each other.

Presence is advisory: nothing about leases or claims depends on it. It
answers the operator's question "is anyone working on this type?", which a
PENDING job cannot answer by itself.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from ._errors import InvalidJob
from ._validation import validate_type

MIN_WORKER_TTL_MS = 1_000
"""Shortest time to live: a heartbeat a third of it apart is already several a second."""
MAX_WORKER_TTL_MS = 600_000
"""Longest time to live: a worker dead for longer than that must not look alive."""
DEFAULT_WORKER_TTL_MS = 30_000
"""The time to live when a heartbeat leaves it to the server (``ttl_ms`` = 0)."""
MAX_WORKER_ID_LENGTH = 128
MAX_WORKER_TYPES = 1_000
"""Most job types one worker may declare: the same bound as one claim's types."""
MAX_WORKER_TEXT = 256
"""Longest host and SDK names kept: they are shown, never parsed."""
MAX_LISTED_WORKERS = 10_000
"""Most workers one listing returns: a listing's cost stays bounded however many heartbeat."""

_WORKER_ID_RE = re.compile(r"[A-Za-z0-9_.:-]+")
# Unicode category Cc: C0, DEL and C1.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    """A worker process as it describes itself in its heartbeats.

    ``last_seen_at_ms`` is set by the store on arrival (its own clock); what
    the worker sends there is ignored. Times are ms since the Unix epoch.
    """

    id: str
    host: str = ""
    pid: int = 0
    sdk: str = ""
    types: tuple[str, ...] = field(default_factory=tuple)
    concurrency: int = 0
    busy: int = 0
    started_at_ms: int = 0
    last_seen_at_ms: int = 0

    def handles(self, job_type: str) -> bool:
        return job_type in self.types


@runtime_checkable
class PresenceStore(Protocol):
    """The store's side of worker presence (both stores implement it).

    Every method uses the store's own clock, so workers on machines whose
    clocks disagree still expire after their own ``ttl_ms``.
    """

    async def heartbeat(self, worker: WorkerInfo, *, ttl_ms: int) -> WorkerInfo:
        """Record ``worker`` as alive until the store's now + ``ttl_ms``; returns it as stored.

        A heartbeat replaces everything the last one of the same id said.
        """
        ...

    async def deregister(self, worker_id: str) -> bool:
        """Forget a worker at once (it is stopping); False when it was not listed."""
        ...

    async def list_workers(self) -> list[WorkerInfo]:
        """The live workers, sorted by id, at most ``MAX_LISTED_WORKERS`` of them."""
        ...

    async def worker_counts(self) -> dict[str, int]:
        """Live workers per job type they handle; a type nobody handles is absent."""
        ...


def validate_worker_id(worker_id: str) -> str:
    """1 to 128 characters from ``[A-Za-z0-9_.:-]``: safe inside a storage key."""
    if not worker_id or len(worker_id) > MAX_WORKER_ID_LENGTH:
        raise InvalidJob("worker.id", f"must be 1 to {MAX_WORKER_ID_LENGTH} characters")
    if not _WORKER_ID_RE.fullmatch(worker_id):
        raise InvalidJob("worker.id", "may contain only letters, digits and _ . : -")
    return worker_id


def validate_worker_ttl(ttl_ms: int) -> int:
    """The heartbeat's time to live; 0 means ``DEFAULT_WORKER_TTL_MS``."""
    if ttl_ms == 0:
        return DEFAULT_WORKER_TTL_MS
    if not MIN_WORKER_TTL_MS <= ttl_ms <= MAX_WORKER_TTL_MS:
        raise InvalidJob(
            "ttl_ms", f"must be between {MIN_WORKER_TTL_MS} and {MAX_WORKER_TTL_MS} (or 0)"
        )
    return ttl_ms


def validate_worker(worker: WorkerInfo) -> WorkerInfo:
    """Check what a worker says about itself; returns it with its types deduplicated."""
    validate_worker_id(worker.id)
    for name, text in (("worker.host", worker.host), ("worker.sdk", worker.sdk)):
        if len(text) > MAX_WORKER_TEXT:
            raise InvalidJob(name, f"must be at most {MAX_WORKER_TEXT} characters")
        # Shown in listings and on the dashboard: a control character there is
        # an escape sequence for whoever reads them, never a host's name.
        if _CONTROL_RE.search(text):
            raise InvalidJob(name, "must not contain control characters")
    types = tuple(dict.fromkeys(worker.types))
    if len(types) > MAX_WORKER_TYPES:
        raise InvalidJob("worker.types", f"must name at most {MAX_WORKER_TYPES} types")
    for job_type in types:
        validate_type(job_type)
    for name, value in (
        ("pid", worker.pid),
        ("concurrency", worker.concurrency),
        ("busy", worker.busy),
        ("started_at", worker.started_at_ms),
    ):
        if value < 0:
            raise InvalidJob(f"worker.{name}", "must not be negative")
    # Concurrency 0 is a worker that did not say; one that did cannot run more than it.
    if worker.concurrency > 0 and worker.busy > worker.concurrency:
        raise InvalidJob("worker.busy", "must not exceed worker.concurrency")
    return replace(worker, types=types)


def live_workers_by_type(workers: Iterable[WorkerInfo]) -> dict[str, int]:
    """How many of ``workers`` handle each job type."""
    return dict(Counter(job_type for worker in workers for job_type in worker.types))


class PresenceService:
    """Heartbeats and the worker list, with every input checked before the store sees it."""

    def __init__(self, store: PresenceStore) -> None:
        self._store = store

    async def heartbeat(
        self, worker: WorkerInfo, *, ttl_ms: int = 0, stopping: bool = False
    ) -> WorkerInfo | None:
        """Record a heartbeat; with ``stopping`` forget the worker instead (returns None)."""
        if stopping:
            await self._store.deregister(validate_worker_id(worker.id))
            return None
        ttl_ms = validate_worker_ttl(ttl_ms)
        return await self._store.heartbeat(validate_worker(worker), ttl_ms=ttl_ms)

    async def list_workers(self) -> list[WorkerInfo]:
        return await self._store.list_workers()

    async def workers_by_type(self) -> dict[str, int]:
        """Live workers per job type they handle (types nobody handles are absent)."""
        return await self._store.worker_counts()
