"""The operators' reads of the in-memory store: get, list, stats, watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from jobqueue.domain import (
    Job,
    JobNotFound,
    JobPage,
    JobQuery,
    JobStatus,
    ListPosition,
    QueueStats,
    TypeStats,
    decode_cursor,
    encode_cursor,
    live_workers_by_type,
)

from ._core import _MemoryCore, _Record

MAX_STATS_TYPES = 1_000
"""Most types one ``stats`` call counts, as in the Redis store."""


class _ReadingMixin(_MemoryCore):
    """Reads that change nothing but purging what outlived its retention."""

    async def get(self, job_id: str) -> Job | None:
        self._purge()
        record = self._records.get(job_id)
        return record.job if record else None

    async def list_jobs(self, query: JobQuery) -> JobPage:
        self._purge()
        after = decode_cursor(query.cursor)
        limit = max(query.limit, 0)
        # The listing index (_index.py): O(log n + page), not a sort of every job.
        matches = self._index.page(query.status, query.type, after, limit + 1)
        page = matches[:limit]
        more = len(matches) > len(page) and bool(page)
        return JobPage(
            jobs=[self._records[key.job_id].job for key in page],
            next_cursor=encode_cursor(page[-1]) if more else "",
        )

    async def stats(self) -> QueueStats:
        self._purge()
        now = self._clock.now_ms()
        counts: dict[str, dict[str, int]] = {}
        # The head of each queue a claim reads (a priority's, or the keyed jobs'):
        # (due, id, created) of its earliest due job, as Redis's sorted sets keep them.
        heads: dict[tuple[str, int | None], tuple[int, str, int]] = {}
        for record in self._records.values():
            job = record.job
            row = counts.setdefault(job.type, {})
            if job.status is JobStatus.PENDING:
                name = "pending" if job.execution_time_ms <= now else "scheduled"
                if name == "pending":
                    queue = (job.type, None if job.limit_key is not None else job.priority)
                    head = (job.execution_time_ms, job.id, job.created_at)
                    if queue not in heads or head < heads[queue]:
                        heads[queue] = head
            else:
                name = job.status.name.lower()
            row[name] = row.get(name, 0) + 1
        for (job_type, _), (due, _, created) in heads.items():
            # The head has waited since it was due, or since it was made if it was
            # due before (stats.lua reads the same heads).
            row = counts[job_type]
            age = now - max(due, created)
            row["oldest_pending_age_ms"] = max(row.get("oldest_pending_age_ms", 0), age)
        # A paused type is listed even with no jobs: the operator paused it.
        names = sorted(counts.keys() | self._paused)
        workers = live_workers_by_type(
            info for expires_at, info in self._workers.values() if expires_at > now
        )
        return QueueStats(
            types=[
                TypeStats(
                    type=name,
                    paused=name in self._paused,
                    workers=workers.get(name, 0),
                    **counts.get(name, {}),
                )
                for name in names[:MAX_STATS_TYPES]
            ],
            omitted_types=max(len(names) - MAX_STATS_TYPES, 0),
        )

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        self._purge()
        record = self._records.get(job_id)
        if record is None:
            raise JobNotFound(job_id)
        changed = asyncio.Event()
        self._watchers.setdefault(job_id, set()).add(changed)
        try:
            last: Job | None = None
            while True:
                changed.clear()
                current = self._records.get(job_id)
                if current is None:
                    return
                if current.job != last:
                    last = current.job
                    yield last
                    if last.status.is_terminal:
                        return
                await changed.wait()
        finally:
            watchers = self._watchers.get(job_id)
            if watchers is not None:
                watchers.discard(changed)
                if not watchers:
                    del self._watchers[job_id]

    def _sort_key(self, record: _Record) -> ListPosition:
        job = record.job
        if job.status is JobStatus.PENDING:
            position = job.execution_time_ms
        elif job.status is JobStatus.RUNNING:
            position = record.deadline_ms
        else:
            position = job.updated_at
        return ListPosition(job.status, job.type, position, job.id)
