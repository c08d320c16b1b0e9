"""Operators' calls: a job by id, cancel, listing and stats, each over the shards it needs.

A job id names its shard (_shards.py), so ``get`` and ``cancel`` reach one
shard; an id not found there may be one of the layout before sharding
(_migrate.py), still there or moved, so both look there next. Listing and
stats read every shard and merge.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from jobqueue.domain import (
    Job,
    JobAlreadyFinished,
    JobNotFound,
    JobPage,
    JobQuery,
    JobStatus,
    ListPosition,
    QueueStats,
    TypeStats,
    decode_cursor,
    encode_cursor,
)

from ._codec import job_from_hash, pairs_to_dict
from ._core import Arg, StoreCore, visible
from ._errors import translated
from ._fanout import gather_all
from ._shards import script_keys

_MAX_STATS_TYPES = 1_000
"""Most types one ``stats`` call counts: bounds its cost with any number of types."""
_STATS_STEP = 100
"""Types counted per ``stats.lua`` call."""
_MAX_PAGE = 1_000
_STAT_NAMES = (
    "pending",
    "scheduled",
    "running",
    "completed",
    "failed",
    "cancelled",
    "oldest_pending_age_ms",
)
_STRIDE = len(_STAT_NAMES) + 1
"""A type's name and its numbers in ``stats.lua``'s flat reply."""


class Admin:
    """Reads by id, cancel, listing and stats of one store."""

    def __init__(self, core: StoreCore) -> None:
        self._core = core

    async def get(self, job_id: str) -> Job | None:
        core = self._core
        key = core.namespaces[core.shard_of_id(job_id)] + "j:" + job_id
        fields = await core.read(lambda: core.hot.execute("HGETALL", key))
        job = visible(job_id, pairs_to_dict(fields))
        if job is None and core.shards > 1:
            return await self._get_unsharded(job_id)
        return job

    async def _get_unsharded(self, job_id: str) -> Job | None:
        """A job of the layout before sharding (_migrate.py): still there, or moved."""
        core = self._core
        key = core.ns + "j:" + job_id
        fields = await core.read(lambda: core.hot.execute("HGETALL", key))
        job = visible(job_id, pairs_to_dict(fields))
        if job is not None:
            return job
        moved = await self._moved(job_id)
        return None if moved is None else await self.get(moved)

    async def _moved(self, job_id: str) -> str | None:
        """The new id of a job the migration moved into its shard."""
        core = self._core
        pointer = core.ns + "moved:" + job_id
        moved = await core.read(lambda: core.hot.execute("GET", pointer))
        return None if moved is None else bytes(moved).decode()

    async def cancel(self, job_id: str) -> Job:
        core = self._core
        shard = core.shard_of_id(job_id)
        reply = await self._cancel_in(core.namespaces[shard], core.keys[shard]["cancel"], job_id)
        if reply[0] == b"missing" and core.shards > 1:
            # The layout before sharding (_migrate.py): the job is still there, or moved.
            reply = await self._cancel_in(core.ns, script_keys(core.ns)["cancel"], job_id)
            if reply[0] == b"missing" and (moved := await self._moved(job_id)) is not None:
                return await self.cancel(moved)
        verdict = reply[0]
        if verdict == b"missing":
            raise JobNotFound(job_id)
        if verdict == b"finished":
            raise JobAlreadyFinished(job_id, JobStatus(int(reply[1])).name)
        return job_from_hash(job_id, pairs_to_dict(reply[1]))

    async def _cancel_in(self, ns: str, fixed_keys: Sequence[str], job_id: str) -> Any:
        args: list[Arg] = [ns, job_id, self._core.cancel_channel(ns)]
        with translated():
            return await self._core.script("cancel", args, keys=(*fixed_keys, ns + "j:" + job_id))

    async def list_jobs(self, query: JobQuery) -> JobPage:
        core = self._core
        after = decode_cursor(query.cursor)
        limit = max(query.limit, 0)
        if limit == 0:
            return JobPage([], "")
        statuses = [query.status] if query.status is not None else list(JobStatus)
        args: list[Arg] = [
            min(limit, _MAX_PAGE) + 1,
            ",".join(str(int(status)) for status in statuses),
            query.type or "",
        ]
        if after is not None:
            args += [int(after.status), after.type, after.position, after.job_id]
        shards = [core.shard_of_type(query.type)] if query.type else list(range(core.shards))
        # Each shard returns its first page in the one listing order; its types
        # are its own, so merging the pages gives the first page of all (a page
        # costs a page per shard).
        pages = await gather_all(self._list_shard(shard, args) for shard in shards)
        rows = list(heapq.merge(*pages, key=lambda row: _listing_order(row[0])))
        more = len(rows) > limit
        page = [job for _, job in rows[:limit]]
        cursor = encode_cursor(rows[limit - 1][0]) if more else ""
        return JobPage(page, cursor)

    async def _list_shard(self, shard: int, tail: list[Arg]) -> list[tuple[ListPosition, Job]]:
        core = self._core
        args: list[Arg] = [core.namespaces[shard], *tail]
        flat = await core.read(core.call("list", args, core.keys[shard]["list"]))
        rows = []
        for i in range(0, len(flat), 5):
            job_id = flat[i + 3].decode()
            status = JobStatus(int(flat[i]))
            position = ListPosition(status, flat[i + 1].decode(), int(flat[i + 2]), job_id)
            rows.append((position, job_from_hash(job_id, pairs_to_dict(flat[i + 4]))))
        return rows

    async def stats(self) -> QueueStats:
        replies = await gather_all(self._stats_shard(shard) for shard in range(self._core.shards))
        counted = sorted(row for _, rows in replies for row in rows)
        omitted = sum(omitted for omitted, _ in replies) + max(len(counted) - _MAX_STATS_TYPES, 0)
        rows = [
            TypeStats(type=job_type, paused=False, **dict(zip(_STAT_NAMES, counts, strict=True)))
            for job_type, counts in counted[:_MAX_STATS_TYPES]
            if any(counts)
        ]
        return QueueStats(types=rows, omitted_types=omitted)

    async def _stats_shard(self, shard: int) -> tuple[int, list[tuple[str, tuple[int, ...]]]]:
        """The shard's first 1,000 types by name, counted a step of types per script call.

        One call for 1,000 types held Redis 12-20 ms (tests/faults scenario 10);
        a step of ``_STATS_STEP`` keeps each under a few ms, other callers between.
        """
        core = self._core
        rows: list[tuple[str, tuple[int, ...]]] = []
        holding = 0
        after = ""
        while len(rows) < _MAX_STATS_TYPES:
            step = min(_STATS_STEP, _MAX_STATS_TYPES - len(rows))
            args: list[Arg] = [core.namespaces[shard], step, after]
            flat = await core.read(core.call("stats", args, core.keys[shard]["stats"]))
            holding = int(flat[0])
            rows += [
                (flat[i].decode(), tuple(int(n) for n in flat[i + 1 : i + _STRIDE]))
                for i in range(1, len(flat), _STRIDE)
            ]
            if len(flat) - 1 < _STRIDE * step:
                break
            after = rows[-1][0]
        return max(holding - len(rows), 0), rows


def _listing_order(position: ListPosition) -> tuple[int, str, int, str]:
    """The listing order list.lua walks: status, type, position, id."""
    return (int(position.status), position.type, position.position, position.job_id)
