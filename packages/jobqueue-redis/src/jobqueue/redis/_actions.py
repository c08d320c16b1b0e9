"""Operators' writes: retry and delete one job, and bulk actions in bounded chunks.

Each job changes in one script step (retry.lua, delete.lua, bulk.lua over
_actions.lua). A bulk call walks the listing order one shard after another
(list.lua, a read), then applies its action to each chunk of at most
``BULK_CHUNK`` ids in one script that checks each job again: 100,000
matching jobs cost many short steps, never one long one, and the page token
says which shard and where in it the next call goes on.
"""

from __future__ import annotations

from typing import Any

from jobqueue.domain import (
    BulkAction,
    BulkResult,
    InvalidJob,
    Job,
    JobFilter,
    JobNotFinished,
    JobNotFound,
    JobNotRetryable,
    JobStatus,
    decode_bulk_cursor,
    decode_cursor,
    encode_bulk_cursor,
    encode_cursor,
)

from ._admin import Admin
from ._codec import job_from_hash, pairs_to_dict
from ._core import Arg, StoreCore
from ._errors import translated

BULK_CHUNK = 500
"""Most jobs one bulk.lua call (and the listing read before it) handles."""


class Actions:
    """Retry, delete and bulk actions of one store."""

    def __init__(self, core: StoreCore, admin: Admin) -> None:
        self._core = core
        self._admin = admin

    async def retry(self, job_id: str) -> Job:
        reply = await self._one("retry", ("tz", "cfg", "ts:1", "ct"), job_id)
        if reply[0] == b"status":
            raise JobNotRetryable(job_id, JobStatus(int(reply[1])).name)
        return job_from_hash(job_id, pairs_to_dict(reply[1]))

    async def delete(self, job_id: str) -> Job:
        reply = await self._one("delete", ("cfg",), job_id)
        if reply[0] == b"status":
            raise JobNotFinished(job_id, JobStatus(int(reply[1])).name)
        return job_from_hash(job_id, pairs_to_dict(reply[1]))

    async def _one(self, name: str, fixed: tuple[str, ...], job_id: str) -> Any:
        core = self._core
        ns = core.namespaces[core.shard_of_id(job_id)]
        keys = [ns + key for key in fixed] + [ns + "j:" + job_id]
        with translated():
            reply = await core.script(name, [ns, job_id], keys=keys)
        if reply[0] == b"missing":
            raise JobNotFound(job_id)
        return reply

    async def bulk(
        self, action: BulkAction, job_filter: JobFilter, *, limit: int, cursor: str
    ) -> BulkResult:
        core = self._core
        shard, listing = decode_bulk_cursor(cursor)
        decode_cursor(listing)  # refuses a listing position this store never wrote
        shards = (
            [core.shard_of_type(job_filter.type)] if job_filter.type else list(range(core.shards))
        )
        if not cursor:
            shard = shards[0]
        elif shard not in shards:
            raise InvalidJob("page_token", "is not a token this server issued")
        statuses = action.walks(job_filter)
        head: list[Arg] = [
            ",".join(str(int(status)) for status in statuses),
            job_filter.type or "",
        ]
        matched = changed = 0
        budget = limit
        index = shards.index(shard)
        while budget > 0:
            want = min(budget, BULK_CHUNK)
            after = decode_cursor(listing)
            tail: list[Arg] = [want, *head]
            if after is not None:
                tail += [int(after.status), after.type, after.position, after.job_id]
            rows = await self._admin._list_shard(shards[index], tail)
            budget -= len(rows)
            if rows:
                found, done = await self._apply(shards[index], action, job_filter, rows)
                matched += found
                changed += done
            if len(rows) < want:
                index += 1
                listing = ""
                if index == len(shards):
                    return BulkResult(matched, changed, "")
            else:
                listing = encode_cursor(rows[-1][0])
        return BulkResult(matched, changed, encode_bulk_cursor(shards[index], listing))

    async def _apply(
        self, shard: int, action: BulkAction, job_filter: JobFilter, rows: list[Any]
    ) -> tuple[int, int]:
        core = self._core
        ns = core.namespaces[shard]
        ids = [job.id for _, job in rows]
        keys = [ns + key for key in ("tz", "cfg", "fx", "ts:1", "ts:5", "ct")]
        keys += [ns + "j:" + job_id for job_id in ids]
        args: list[Arg] = [
            ns,
            int(action),
            "" if job_filter.status is None else int(job_filter.status),
            "" if job_filter.updated_before_ms is None else job_filter.updated_before_ms,
            core.cancel_channel(ns),
            *ids,
        ]
        with translated():
            matched, changed = await core.script("bulk", args, keys=keys)
        return int(matched), int(changed)
