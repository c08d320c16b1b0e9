"""Enqueue: new jobs stored by add.lua, one script per shard, concurrent callers combined.

With several shards, each job's id is rewritten to name its type's shard
(_shards.py), and a call whose jobs fall in several shards is one atomic,
idempotent part per shard (docs/redis-data-model.md says what a batch key
promises then).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from jobqueue.domain import InvalidJob, Job, OnConflict, StoreUnavailable, UniqueConflict
from jobqueue.domain._frozen import slot_builder

from ._core import Arg, StoreCore
from ._errors import translated
from ._fanout import gather_all, group_indexes
from ._shards import with_shard

_COMBINE_LIMIT = 1_000
"""Most jobs of concurrent ``add`` calls combined into one script (a single call may hold more)."""


class Enqueuer:
    """``add`` with group commit: calls made while another is in flight share one script call."""

    def __init__(self, core: StoreCore, get: Callable[[str], Awaitable[Job | None]]) -> None:
        self._core = core
        self._get = get
        self._queue: deque[_PendingAdd] = deque()
        self._flush: asyncio.Task[None] | None = None
        self._busy = False

    async def add(self, jobs: Sequence[Job], *, batch_key: str | None = None) -> list[Job]:
        """Store new jobs; calls made while another is in flight share one script call.

        This group commit lets a server under load store many producers' jobs
        in one round trip. Each caller's jobs still land all or none, since a
        combined call is one script. A lone caller writes its own jobs at
        once; callers that queue behind it are flushed by a task of their own,
        so a caller that gives up (its RPC was cancelled) never aborts the
        others' writes. A call with a batch key is never combined: the key
        names exactly its jobs.
        """
        if not jobs:
            return []
        if self._busy:
            future: asyncio.Future[list[Job]] = asyncio.get_running_loop().create_future()
            self._queue.append(_PendingAdd(list(jobs), batch_key, future))
            return await future
        self._busy = True
        try:
            if len(jobs) == 1 and batch_key is None:
                job = jobs[0]
                if (
                    not job.priority
                    and job.limit_key is None
                    and not job.idempotency_key
                    and job.unique is None
                    and not job.headers
                    and self._core.connections.durable is None
                ):
                    return [await self._add_one(job)]
            return await self._add_now(jobs, batch_key)
        finally:
            self._busy = False
            if self._queue:
                self._busy = True
                self._flush = asyncio.create_task(self._flush_adds())

    async def _flush_adds(self) -> None:
        batch: list[_PendingAdd] = []
        try:
            while self._queue:
                batch = [self._queue.popleft()]
                size = len(batch[0].jobs)
                while (
                    batch[0].batch_key is None
                    and self._queue
                    and self._queue[0].batch_key is None
                    and size + len(self._queue[0].jobs) <= _COMBINE_LIMIT
                ):
                    size += len(self._queue[0].jobs)
                    batch.append(self._queue.popleft())
                try:
                    stored = await self._add_now(
                        [job for add in batch for job in add.jobs], batch[0].batch_key
                    )
                except Exception as error:
                    for add in batch:
                        if not add.future.done():
                            add.future.set_exception(error)
                    continue
                if batch[0].batch_key is not None:  # a replay may return another count
                    if not batch[0].future.done():
                        batch[0].future.set_result(stored)
                    continue
                start = 0
                for add in batch:
                    if not add.future.done():
                        add.future.set_result(stored[start : start + len(add.jobs)])
                    start += len(add.jobs)
        finally:
            self._busy = False
            self._flush = None
            # Only a cancelled flush (the loop is closing) leaves callers waiting.
            for add in [*batch, *self._queue]:
                if not add.future.done():
                    add.future.set_exception(StoreUnavailable("the store closed while enqueueing"))
            self._queue.clear()

    async def _add_one(self, job: Job) -> Job:
        """Store one plain job (no option set) by add_one.lua: add.lua's effects, not its planning.

        A lone producer's enqueue is the hottest call there is: add.lua's
        general path cost it ~30 µs of Redis time against ~19 for the same
        writes alone (docs/benchmarks.md). Durable stores keep add.lua, the
        script _durability.py waits for replicas after.
        """
        core = self._core
        shard = 0
        if core.shards != 1:
            job = self._routed(job)
            shard = core.shard_of_type(job.type)
        job_id = job.id
        job_type = job.type
        if " " in job_id or " " in job_type:
            raise InvalidJob("id", "job ids and types must not contain spaces")
        max_attempts = job.max_attempts
        due = job.execution_time_ms
        with translated():
            reply = await core.script(
                "add_one",
                (
                    core.namespaces[shard],
                    job_id,
                    job_type,
                    # Due at Redis's now when due at once (see _add_to_shard).
                    "-" if due == job.created_at else due,
                    "" if max_attempts is None else max_attempts,
                    job.payload,
                ),
                keys=core.keys[shard]["add"],
            )
        now = int(reply[0])
        return _stamp(job, now if due == job.created_at else due, now)

    async def _add_now(self, jobs: Sequence[Job], batch_key: str | None) -> list[Job]:
        """Store jobs, one script per shard they fall in (see docs/redis-data-model.md).

        With several shards, each job's id is rewritten to name its type's
        shard (_shards.py): the returned jobs carry the ids to use. A batch
        that spans shards is one atomic, idempotent part per shard, each
        remembered under the batch key in its own shard.
        """
        core = self._core
        if core.shards == 1:
            return await self._add_to_shard(0, jobs, batch_key)
        routed = [self._routed(job) for job in jobs]
        parts = group_indexes(core.shard_of_type(job.type) for job in routed)
        if len(parts) == 1:
            return await self._add_to_shard(next(iter(parts)), routed, batch_key)
        replies = await gather_all(
            self._add_to_shard(shard, [routed[i] for i in indexes], batch_key)
            for shard, indexes in parts.items()
        )
        if any(
            len(reply) != len(indexes)
            for indexes, reply in zip(parts.values(), replies, strict=True)
        ):
            # A replayed batch returns what its first call stored: shard by shard.
            return [job for reply in replies for job in reply]
        stored: list[Job] = list(routed)
        for indexes, reply in zip(parts.values(), replies, strict=True):
            for index, job in zip(indexes, reply, strict=True):
                stored[index] = job
        return stored

    def _routed(self, job: Job) -> Job:
        """The job with an id that names its type's shard."""
        core = self._core
        try:
            job_id = with_shard(job.id, core.shard_of_type(job.type), core.shards)
        except ValueError as error:
            raise InvalidJob("id", str(error)) from None
        return job if job_id == job.id else dataclasses.replace(job, id=job_id)

    async def _add_to_shard(
        self, shard: int, jobs: Sequence[Job], batch_key: str | None
    ) -> list[Job]:
        core = self._core
        args: list[Arg] = [core.namespaces[shard], batch_key or ""]
        for job in jobs:
            max_attempts = "" if job.max_attempts is None else job.max_attempts
            # A job due when it was made is due at Redis's now: the caller's
            # clock (perhaps skewed) decides no time the caller did not ask for.
            due = "-" if job.execution_time_ms == job.created_at else job.execution_time_ms
            head = f"{job.id} {job.type} {due} {max_attempts}"
            if head.count(" ") != 3:
                raise InvalidJob("id", "job ids and types must not contain spaces")
            if job.priority:
                # A fifth word only when set: a job without one costs nothing more.
                head = f"{head} {job.priority}"
            # Options only when set, named after a second tab (add.lua's header):
            # a plain job is two arguments, which Redis parses and steps over per job.
            key = job.idempotency_key
            rule = job.unique
            if key or rule is not None or job.headers:
                letters = ""
                options: list[Arg] = []
                if key:
                    letters += "k"
                    options.append(key)
                if rule is not None:
                    letters += "u"
                    options.append(
                        f"{int(rule.scope)} {int(rule.on_conflict)} {rule.window_ms} {rule.key}"
                    )
                if job.headers:
                    letters += "h"
                    # Headers as compact JSON, one field of the job hash (_codec.py).
                    options.append(json.dumps(dict(job.headers), separators=(",", ":")))
                args += [f"{head}\t{job.limit_key or ''}\t{letters}", job.payload, *options]
            elif job.limit_key is not None:
                # After a tab: a key holds no whitespace (validate_limit_key).
                args += [f"{head}\t{job.limit_key}\t", job.payload]
            else:
                args += [head, job.payload]
        with translated():
            reply = await core.script("add", args, keys=core.keys[shard]["add"])
        if reply[0] == b"unique":
            raise UniqueConflict(reply[1].decode(), reply[2].decode())
        now = int(reply[0])
        stored_ids = [raw_id.decode() for raw_id in reply[1:]]
        ours = {job.id: _stamped(job, now) for job in jobs}
        if len(stored_ids) == len(jobs) and all(
            stored_id == job.id for stored_id, job in zip(stored_ids, jobs, strict=True)
        ):
            return await self._replaced_read_back(jobs, list(ours.values()))
        # Idempotency keys named jobs stored before: new ones are ours, the
        # rest are read back, all at once (the reads share one pipeline).
        earlier = [stored_id for stored_id in dict.fromkeys(stored_ids) if stored_id not in ours]
        found = await asyncio.gather(*(self._get(stored_id) for stored_id in earlier))
        for stored_id, known in zip(earlier, found, strict=True):
            if known is None:  # expired in between: the key no longer holds
                raise StoreUnavailable(f"job {stored_id} vanished while enqueueing")
            ours[stored_id] = known
        return await self._replaced_read_back(jobs, [ours[stored_id] for stored_id in stored_ids])

    async def _replaced_read_back(self, jobs: Sequence[Job], stored: list[Job]) -> list[Job]:
        """``stored`` with the jobs a later job of the same call replaced read back.

        A REPLACE later in one script call (a batch, or concurrent callers'
        jobs combined) cancels a job this call stored a moment before: its
        caller must learn that state (CANCELLED), not the PENDING it was
        written with.
        """
        seen: dict[str, int] = {}
        replaced: list[int] = []
        if len(stored) != len(jobs):  # a replayed batch: its first call's jobs
            return stored
        for index, job in enumerate(jobs):
            rule = job.unique
            if rule is None or stored[index].id != job.id:
                continue
            if rule.key in seen and rule.on_conflict is OnConflict.REPLACE:
                replaced.append(seen[rule.key])
            seen[rule.key] = index
        if not replaced:
            return stored
        found = await asyncio.gather(*(self._get(stored[index].id) for index in replaced))
        out = list(stored)
        for index, known in zip(replaced, found, strict=True):
            if known is not None:
                out[index] = known
        return out


_STAMP_COPIED = (
    "id",
    "type",
    "payload",
    "status",
    "attempts",
    "max_attempts",
    "last_error",
    "result",
    "cancel_requested",
    "idempotency_key",
    "headers",
    "priority",
    "limit_key",
    "unique",
)
"""The fields a stamped job takes from the job given to ``add``; the rest are add.lua's."""

_stamp: Callable[[Job, int, int], Job] = slot_builder(
    Job,
    ("job", "due", "now"),
    {
        **{name: f"job.{name}" for name in _STAMP_COPIED},
        "execution_time_ms": "due",
        "created_at": "now",
        "updated_at": "now",
    },
)
"""``(job, due, now) -> Job`` writing each slot once (domain's _frozen.py): ``Job(...)``
with 17 keywords cost ~2.1 µs of a bulk enqueue's ~13 µs per job, most of it matching
keywords. Fields not copied take their defaults, as the keyword call left them
(tests/redis/test_stamped.py compares the two)."""


def _stamped(job: Job, now: int) -> Job:
    """The job as add.lua stored it: created (and, if due at once, due) at Redis's now."""
    due = now if job.execution_time_ms == job.created_at else job.execution_time_ms
    return _stamp(job, due, now)


@dataclass(slots=True)
class _PendingAdd:
    jobs: list[Job]
    batch_key: str | None
    future: asyncio.Future[list[Job]]
