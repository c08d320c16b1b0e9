"""The in-memory store's state and the steps every operation shares.

One ``_MemoryCore`` holds every job and index; the operations live in mixins
by concern (``_leasing`` for workers, ``_reading`` for operators' reads, the
face in ``_store``). Nothing here awaits, so each operation built from these
steps stays atomic on one event loop, as the port requires.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import TypeVar

from jobqueue.domain import (
    Clock,
    Job,
    JobStatus,
    ListPosition,
    SystemClock,
    TypeLimits,
    WorkerInfo,
)

from ._index import LISTED_BY, IndexedRecords, ListingIndex
from ._unique import UniqueLock, idempotency_slot, release_lock

_K = TypeVar("_K")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryStoreSettings:
    """Bounds of the in-memory store.

    ``max_jobs`` caps how many jobs (of any status) it holds, so a runaway
    producer gets RESOURCE_EXHAUSTED instead of exhausting the server's memory.
    """

    retention_ms: int = 24 * 3600 * 1000
    max_jobs: int = 1_000_000


@dataclass(slots=True)
class _Record:
    job: Job
    token: str = ""
    deadline_ms: int = 0
    # The lease's attempt counts for good once a renew or settle confirms it.
    confirmed: bool = False
    unconfirmed_expiries: int = 0
    # The listing index holding this record, and the position it is listed at
    # (_index.py): a change of the job or of its lease deadline moves it there.
    index: ListingIndex | None = field(default=None, repr=False, compare=False)
    listed: ListPosition | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name in LISTED_BY:
            index = getattr(self, "index", None)  # unset while __init__ runs
            if index is not None:
                index.moved(self)


class _MemoryCore:
    """Every job, its indexes and its waiters; the steps shared by all operations."""

    def __init__(
        self, settings: MemoryStoreSettings | None = None, *, clock: Clock | None = None
    ) -> None:
        self._settings = settings or MemoryStoreSettings()
        self._clock = clock or SystemClock()
        self._index = ListingIndex()
        self._records: dict[str, _Record] = IndexedRecords(self._index)
        self._pending: dict[str, list[tuple[int, str]]] = {}
        # PENDING jobs of a nonzero priority: type -> priority -> (due, id) heap.
        # Priority 0, every job that names none, stays in ``_pending`` (see _pop_due).
        self._levels: dict[str, dict[int, list[tuple[int, str]]]] = {}
        # PENDING jobs with a limit key: type -> key -> (due, id) heap, and the
        # type's keys in turn order, least recently served first; '' stands
        # for the type's jobs without a key, one more lane (see _pop_due).
        self._keyed: dict[str, dict[str, list[tuple[int, str]]]] = {}
        self._turns: dict[str, OrderedDict[str, None]] = {}
        self._running: dict[str, int] = {}
        # RUNNING jobs per type and per (type, key), kept as leases start and
        # end (_slot_taken, _slot_freed): a claim's limit checks scan nothing.
        self._type_running: dict[str, int] = {}
        self._key_running: dict[tuple[str, str], int] = {}
        # Keys a claim set aside, out of ``_turns`` so no claim visits them:
        # type -> key -> until when (None: until a slot of the key frees), and
        # the timed ones by time. Keys visited in all: tests count claims' work.
        self._aside: dict[str, dict[str, int | None]] = {}
        self._aside_due: dict[str, list[tuple[int, str]]] = {}
        self._key_visits = 0
        self._finished: deque[tuple[int, str]] = deque()
        self._keys: dict[str, str] = {}
        self._batches: dict[str, tuple[int, list[str]]] = {}
        self._batch_expiry: deque[tuple[int, str]] = deque()
        self._rotation = 0
        self._sweep_locked_until = 0
        self._changed = asyncio.Event()
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._cancel_inboxes: set[asyncio.Queue[str]] = set()
        # Types claims skip (pause_type); their jobs stay in ``_pending``.
        self._paused: set[str] = set()
        # Types' limits (set_type_limits), and each limited type's recent starts.
        self._limits: dict[str, TypeLimits] = {}
        self._starts: dict[str, deque[int]] = {}
        self._key_starts: dict[tuple[str, str], deque[int]] = {}
        # Live workers (_presence.py): id -> (expiry by this store's clock, info).
        self._workers: dict[str, tuple[int, WorkerInfo]] = {}
        # Cumulative counters by (kind, type), moved in the step that makes the
        # transition, as the Redis store's 'ct' hash (see ``_counters``).
        self._counts: dict[tuple[str, str], int] = {}
        # Unique key -> the job holding it (_unique.py).
        self._unique_locks: dict[str, UniqueLock] = {}

    def _live_lease(self, job_id: str, token: str) -> _Record | None:
        """The record whose lease this is, unless the token is stale or the deadline passed."""
        record = self._records.get(job_id)
        if (
            record is None
            or record.job.status is not JobStatus.RUNNING
            or record.token != token
            or record.deadline_ms <= self._clock.now_ms()
        ):
            return None
        return record

    def _requeue(self, record: _Record, due: int, now: int) -> None:
        job = record.job
        record.job = replace(job, status=JobStatus.PENDING, execution_time_ms=due, updated_at=now)
        record.token = ""
        record.deadline_ms = 0
        self._slot_freed(job)
        self._push_pending(job, due)
        self._notify(job.id)

    def _push_pending(self, job: Job, due: int) -> None:
        """Queue a PENDING job, due at ``due``, in its type's heap of its priority or key."""
        if job.limit_key is not None:
            heap = self._keyed.setdefault(job.type, {}).setdefault(job.limit_key, [])
            turns = self._turns.setdefault(job.type, OrderedDict({"": None}))
            aside = self._aside.get(job.type, {})
            if job.limit_key not in aside:
                turns.setdefault(job.limit_key, None)
            elif aside[job.limit_key] is not None:
                # Set aside for a time (its window, its head): the new job may
                # be due sooner. One held for a slot stays aside until it frees.
                del aside[job.limit_key]
                turns[job.limit_key] = None
        elif job.priority == 0:
            heap = self._pending.setdefault(job.type, [])
        else:
            heap = self._levels.setdefault(job.type, {}).setdefault(job.priority, [])
        heapq.heappush(heap, (due, job.id))

    def _slot_taken(self, job: Job) -> None:
        """A job became RUNNING: one slot fewer for its type and its key."""
        self._type_running[job.type] = self._type_running.get(job.type, 0) + 1
        if job.limit_key is not None:
            slot = (job.type, job.limit_key)
            self._key_running[slot] = self._key_running.get(slot, 0) + 1

    def _slot_freed(self, job: Job) -> None:
        """A RUNNING job left RUNNING: its slots free, and its key returns to the turns."""
        if self._running.pop(job.id, None) is None:
            return
        _decrement(self._type_running, job.type)
        if job.limit_key is not None:
            _decrement(self._key_running, (job.type, job.limit_key))
            aside = self._aside.get(job.type, {})
            if job.limit_key in aside and aside[job.limit_key] is None:
                del aside[job.limit_key]
                turns = self._turns.setdefault(job.type, OrderedDict({"": None}))
                turns[job.limit_key] = None

    def _finish(self, record: _Record, status: JobStatus, now: int) -> Job:
        job = replace(record.job, status=status, updated_at=now)
        self._count(status.name.lower(), job.type)
        record.job = job
        record.token = ""
        record.deadline_ms = 0
        self._slot_freed(job)
        release_lock(self._unique_locks, job)
        self._finished.append((now + self._settings.retention_ms, job.id))
        self._notify(job.id)
        return job

    def _purge(self) -> None:
        now = self._clock.now_ms()
        # The clock never goes back, so batch keys expire in the order stored.
        while self._batch_expiry and self._batch_expiry[0][0] <= now:
            _, batch_key = self._batch_expiry.popleft()
            known = self._batches.get(batch_key)
            if known is not None and known[0] <= now:
                del self._batches[batch_key]
        while self._finished and self._finished[0][0] <= now:
            _, job_id = self._finished.popleft()
            record = self._records.get(job_id)
            # A job retried since (_admin.py) is no longer finished, or finished
            # again later with an entry of its own further on.
            if record is not None and (
                not record.job.status.is_terminal
                or record.job.updated_at + self._settings.retention_ms > now
            ):
                continue
            record = self._records.pop(job_id, None)
            if record is not None:
                key = idempotency_slot(record.job)
                if key is not None and self._keys.get(key) == job_id:
                    del self._keys[key]
                self._notify(job_id)

    def _count(self, kind: str, job_type: str, n: int = 1) -> None:
        key = (kind, job_type)
        self._counts[key] = self._counts.get(key, 0) + n

    def _wake(self) -> None:
        self._changed.set()

    def _notify(self, job_id: str) -> None:
        for changed in self._watchers.get(job_id, ()):
            changed.set()


def _decrement(counts: dict[_K, int], key: _K) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
