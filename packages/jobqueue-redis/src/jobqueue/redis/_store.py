"""The JobStore port on Redis: one hash per job, sorted sets per type, Lua for every change."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import heapq
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

from jobqueue.domain import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_UNCONFIRMED_DELIVERIES,
    CapacityExceeded,
    Clock,
    InvalidJob,
    Job,
    JobAlreadyFinished,
    JobNotFound,
    JobPage,
    JobQuery,
    JobStatus,
    Lease,
    LeaseState,
    ListPosition,
    Outcome,
    OutcomeKind,
    QueueStats,
    StoreUnavailable,
    TypeStats,
    decode_cursor,
    encode_cursor,
    validate_type,
)
from redis import exceptions as rexc

from ._codec import job_from_hash, pairs_to_dict
from ._connections import store_connections
from ._durability import DURABLE_SCRIPTS
from ._errors import UNAVAILABLE_ERRORS, is_failover
from ._pubsub import Subscriber
from ._settings import RedisStoreSettings
from ._shards import namespace, script_keys, shard_of_id, shard_of_type, with_shard
from ._waits import WakeWaits

MAX_CLAIM = 1_000
"""Most jobs one claim takes: bounds the time one script holds Redis."""
_CHUNK = 1_000
_COMBINE_LIMIT = 1_000
"""Most jobs of concurrent ``add`` calls combined into one script (a single call may hold more)."""
_READ_ATTEMPTS = 3
_KINDS = {
    OutcomeKind.COMPLETE: "c",
    OutcomeKind.RETRY: "r",
    OutcomeKind.FAIL: "f",
    OutcomeKind.RELEASE: "l",
    OutcomeKind.CANCELLED: "x",
}
_LEASE_STATES = {0: LeaseState.LOST, 1: LeaseState.ACTIVE, 2: LeaseState.CANCEL_REQUESTED}
T = TypeVar("T")
R = TypeVar("R")
_Arg = bytes | str | int | float


def _load_scripts() -> dict[str, str]:
    folder = resources.files(__package__).joinpath("lua")
    common = folder.joinpath("_common.lua").read_text()
    names = ("add", "claim", "settle", "renew", "cancel", "requeue", "stats", "list", "watchers")
    # The shebang makes Redis Cluster refuse any key outside the declared keys' slot.
    return {name: "#!lua\n" + common + folder.joinpath(f"{name}.lua").read_text() for name in names}


_SCRIPTS = _load_scripts()
_SHAS = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in _SCRIPTS.items()}


@contextmanager
def _translated() -> Iterator[None]:
    """Turn redis-py's failures into the domain's, so callers never import redis.

    It also gives back cancellations redis-py loses. On Python 3.11, a task
    cancelled just as a command's socket write completes has the cancellation
    dropped inside ``asyncio.wait_for`` (fixed in 3.12), or sees it as a
    connection error; a caller that retries on StoreUnavailable would then
    never stop. A dropped cancellation still counts in ``Task.cancelling()``,
    so a count that grew during the call means one was lost.

    Errors are classified by their redis-py types (_errors.py): a node that
    is no primary now (READONLY, LOADING, MASTERDOWN, TRYAGAIN, CLUSTERDOWN)
    is unavailable like an unreachable one, and the connection that heard it
    was already retired, so a retry reaches the new primary.
    """
    task = asyncio.current_task()
    cancels = task.cancelling() if task is not None else 0
    try:
        yield
    except UNAVAILABLE_ERRORS as error:
        if task is not None and task.cancelling() > cancels:
            raise asyncio.CancelledError from error
        if is_failover(error):
            code = getattr(error, "status_code", None) or type(error).__name__
            raise StoreUnavailable(f"Redis cannot serve this now ({code}: {error})") from error
        raise StoreUnavailable(f"Redis is unreachable: {error}") from error
    except rexc.OutOfMemoryError as error:
        raise CapacityExceeded("Redis is out of memory (maxmemory reached)") from error
    if task is not None and task.cancelling() > cancels:
        raise asyncio.CancelledError


class RedisJobStore:
    """Jobs in Redis, shared by any number of servers and workers.

    Nothing connects until the first call. Writes are never retried here: a
    write whose reply was lost may have been applied, and only the caller
    knows whether repeating it is safe (an idempotency key makes an enqueue
    safe to repeat). Reads are retried on a fresh connection.
    """

    def __init__(self, settings: RedisStoreSettings, *, clock: Clock | None = None) -> None:
        # ``clock`` is accepted for the JobStore family's constructor shape and
        # ignored: every time this store uses is Redis's own (TIME in the scripts).
        del clock
        self._settings = settings
        self._ns = settings.namespace
        self._types_key = self._ns + "tz"
        # Virtual shards (_shards.py): shard k's namespace and its scripts' KEYS.
        self._shard_count = settings.shards
        self._namespaces = [
            namespace(settings.key_prefix, k, settings.shards) for k in range(settings.shards)
        ]
        self._shard_keys = [script_keys(ns) for ns in self._namespaces]
        # Retention set here is written to Redis before the first script runs,
        # where every server and worker of the prefix reads it (see _common.lua).
        self._config_pending = (
            settings.retention_ms is not None or settings.max_finished is not None
        )
        # Single Redis, Sentinel or Cluster, each connection finds the primary
        # when it connects (_connections.py). Scripts and single-key reads,
        # nearly every call a worker or producer makes, share one pipelined
        # connection (_multiplex.py); durable writes have their own (_durability.py).
        self._connections = store_connections(settings)
        self._hot = self._connections.hot
        self._durable = self._connections.durable
        self._blocking = self._connections.blocking
        # Idle claims share one BLPOP per set of wake lists, and at most as
        # many as the blocking pool holds, so they never exhaust it (_waits.py).
        self._waits = WakeWaits(self._blocking, self._hot.execute, slots=settings.max_connections)
        # Every watch and cancellation stream shares one pub/sub connection (_pubsub.py).
        self._subscriber = Subscriber(self._connections.subscriber)
        if self._connections.topology is not None and self._connections.topology.is_sentinel:
            # Publishes of the new primary never reach a connection to the old one.
            self._connections.topology.on_switch(self._subscriber.reconnect)
        self._rotation = 0
        self._sweeper_id = secrets.token_hex(8)
        self._add_queue: deque[_PendingAdd] = deque()
        self._add_flush: asyncio.Task[None] | None = None
        self._add_busy = False

    @property
    def settings(self) -> RedisStoreSettings:
        return self._settings

    # -- producers -------------------------------------------------------------

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
        if self._add_busy:
            future: asyncio.Future[list[Job]] = asyncio.get_running_loop().create_future()
            self._add_queue.append(_PendingAdd(list(jobs), batch_key, future))
            return await future
        self._add_busy = True
        try:
            return await self._add_now(jobs, batch_key)
        finally:
            self._add_busy = False
            if self._add_queue:
                self._add_busy = True
                self._add_flush = asyncio.create_task(self._flush_adds())

    async def _flush_adds(self) -> None:
        batch: list[_PendingAdd] = []
        try:
            while self._add_queue:
                batch = [self._add_queue.popleft()]
                size = len(batch[0].jobs)
                while (
                    batch[0].batch_key is None
                    and self._add_queue
                    and self._add_queue[0].batch_key is None
                    and size + len(self._add_queue[0].jobs) <= _COMBINE_LIMIT
                ):
                    size += len(self._add_queue[0].jobs)
                    batch.append(self._add_queue.popleft())
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
            self._add_busy = False
            self._add_flush = None
            # Only a cancelled flush (the loop is closing) leaves callers waiting.
            for add in [*batch, *self._add_queue]:
                if not add.future.done():
                    add.future.set_exception(StoreUnavailable("the store closed while enqueueing"))
            self._add_queue.clear()

    async def _add_now(self, jobs: Sequence[Job], batch_key: str | None) -> list[Job]:
        """Store jobs, one script per shard they fall in (see docs/redis-data-model.md).

        With several shards, each job's id is rewritten to name its type's
        shard (_shards.py): the returned jobs carry the ids to use. A batch
        that spans shards is one atomic, idempotent part per shard, each
        remembered under the batch key in its own shard.
        """
        if self._shard_count == 1:
            return await self._add_to_shard(0, jobs, batch_key)
        routed = [self._routed(job) for job in jobs]
        parts: dict[int, list[int]] = {}
        for index, job in enumerate(routed):
            parts.setdefault(shard_of_type(job.type, self._shard_count), []).append(index)
        if len(parts) == 1:
            return await self._add_to_shard(next(iter(parts)), routed, batch_key)
        replies = await _all(
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
        shard = shard_of_type(job.type, self._shard_count)
        try:
            job_id = with_shard(job.id, shard, self._shard_count)
        except ValueError as error:
            raise InvalidJob("id", str(error)) from None
        return job if job_id == job.id else dataclasses.replace(job, id=job_id)

    async def _add_to_shard(
        self, shard: int, jobs: Sequence[Job], batch_key: str | None
    ) -> list[Job]:
        args: list[_Arg] = [self._namespaces[shard], batch_key or ""]
        for job in jobs:
            max_attempts = "" if job.max_attempts is None else job.max_attempts
            # A job due when it was made is due at Redis's now: the caller's
            # clock (perhaps skewed) decides no time the caller did not ask for.
            due = "-" if job.execution_time_ms == job.created_at else job.execution_time_ms
            head = f"{job.id} {job.type} {due} {max_attempts}"
            if head.count(" ") != 3:
                raise InvalidJob("id", "job ids and types must not contain spaces")
            args += [head, job.payload, job.idempotency_key or ""]
        with _translated():
            reply = await self._script("add", args, keys=self._shard_keys[shard]["add"])
        now = int(reply[0])
        stored_ids = [raw_id.decode() for raw_id in reply[1:]]
        ours = {job.id: _stamped(job, now) for job in jobs}
        if len(stored_ids) == len(jobs) and all(
            stored_id == job.id for stored_id, job in zip(stored_ids, jobs, strict=True)
        ):
            return list(ours.values())
        # Idempotency keys named jobs stored before: new ones are ours, the
        # rest are read back, all at once (the reads share one pipeline).
        earlier = [stored_id for stored_id in dict.fromkeys(stored_ids) if stored_id not in ours]
        found = await asyncio.gather(*(self.get(stored_id) for stored_id in earlier))
        for stored_id, known in zip(earlier, found, strict=True):
            if known is None:  # expired in between: the key no longer holds
                raise StoreUnavailable(f"job {stored_id} vanished while enqueueing")
            ours[stored_id] = known
        return [ours[stored_id] for stored_id in stored_ids]

    async def get(self, job_id: str) -> Job | None:
        key = self._namespaces[shard_of_id(job_id, self._shard_count)] + "j:" + job_id
        fields = await self._read(lambda: self._hot.execute("HGETALL", key))
        job = self._visible(job_id, pairs_to_dict(fields))
        if job is None and self._shard_count > 1:
            return await self._get_unsharded(job_id)
        return job

    async def _get_unsharded(self, job_id: str) -> Job | None:
        """A job of the layout before sharding (_migrate.py): still there, or moved."""
        key = self._ns + "j:" + job_id
        fields = await self._read(lambda: self._hot.execute("HGETALL", key))
        job = self._visible(job_id, pairs_to_dict(fields))
        if job is not None:
            return job
        moved = await self._moved(job_id)
        return None if moved is None else await self.get(moved)

    async def _moved(self, job_id: str) -> str | None:
        """The new id of a job the migration moved into its shard."""
        pointer = self._ns + "moved:" + job_id
        moved = await self._read(lambda: self._hot.execute("GET", pointer))
        return None if moved is None else bytes(moved).decode()

    async def cancel(self, job_id: str) -> Job:
        shard = shard_of_id(job_id, self._shard_count)
        reply = await self._cancel_in(
            self._namespaces[shard], self._shard_keys[shard]["cancel"], job_id
        )
        if reply[0] == b"missing" and self._shard_count > 1:
            # The layout before sharding (_migrate.py): the job is still there, or moved.
            reply = await self._cancel_in(self._ns, script_keys(self._ns)["cancel"], job_id)
            if reply[0] == b"missing" and (moved := await self._moved(job_id)) is not None:
                return await self.cancel(moved)
        verdict = reply[0]
        if verdict == b"missing":
            raise JobNotFound(job_id)
        if verdict == b"finished":
            raise JobAlreadyFinished(job_id, JobStatus(int(reply[1])).name)
        return job_from_hash(job_id, pairs_to_dict(reply[1]))

    async def _cancel_in(self, ns: str, fixed_keys: Sequence[str], job_id: str) -> Any:
        # Every shard publishes cancellations on the one channel workers listen to.
        args: list[_Arg] = [ns, job_id, self._ns + "cancels"]
        with _translated():
            return await self._script("cancel", args, keys=(*fixed_keys, ns + "j:" + job_id))

    # -- workers ---------------------------------------------------------------

    async def claim(
        self, types: Sequence[str], *, limit: int, lease_ms: int, wait_ms: int = 0
    ) -> list[Lease]:
        order = [validate_type(t) for t in dict.fromkeys(types)]
        limit = min(limit, MAX_CLAIM)
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + max(wait_ms, 0) / 1000
        if not order or limit <= 0:
            await asyncio.sleep(max(wait_ms, 0) / 1000)
            return []
        groups: dict[int, list[str]] = {}
        for job_type in order:
            groups.setdefault(shard_of_type(job_type, self._shard_count), []).append(job_type)
        wake_keys = [
            [self._namespaces[shard] + "w:" + t for t in group] for shard, group in groups.items()
        ]
        while True:
            if len(groups) == 1:
                shard, group = next(iter(groups.items()))
                leases, wait_s = await self._claim_shard(shard, group, limit, lease_ms)
            else:
                leases, wait_s = await self._claim_shards(groups, limit, lease_ms)
            remaining = give_up_at - loop.time()
            if leases or remaining <= 0:
                return leases
            if wait_s is not None:
                remaining = min(remaining, wait_s)
            await self._wait_for_wake(wake_keys, remaining)

    async def _claim_shard(
        self, shard: int, order: list[str], limit: int, lease_ms: int
    ) -> tuple[list[Lease], float | None]:
        """One claim script on one shard; with no lease, how long until its next due job."""
        self._rotation = (self._rotation + 1) % len(order)
        rotated = order[self._rotation :] + order[: self._rotation]
        token_base = secrets.token_hex(6) + ":"
        args: list[_Arg] = [self._namespaces[shard], limit, lease_ms, token_base, *rotated]
        with _translated():
            reply = await self._script("claim", args, keys=self._shard_keys[shard]["claim"])
        now = int(reply[1])  # Redis's time: deadlines and due times count from it
        leases = [
            Lease(
                job_from_hash(reply[i].decode(), pairs_to_dict(reply[i + 2])),
                reply[i + 1].decode(),
                now + lease_ms,
            )
            for i in range(2, len(reply), 3)
        ]
        next_due = int(reply[0])
        return leases, (max(next_due - now, 0) / 1000 if next_due >= 0 else None)

    async def _claim_shards(
        self, groups: dict[int, list[str]], limit: int, lease_ms: int
    ) -> tuple[list[Lease], float | None]:
        """Claim across shards with the fairness claim.lua keeps across types.

        Each round gives the shards that may hold due work a share of what is
        left in proportion to their types (a shard that filled its share may
        have more), starting from a rotating shard, and the shards of a round
        run at once. A claim smaller than the number of shards asks at most
        ``limit`` of them per round: an idle claim of one job over 30 empty
        shards costs 30 small scripts. Each master stamps its own leases, so a
        deadline counts from the clock of the master that holds the job.
        """
        active = list(groups)
        self._rotation = (self._rotation + 1) % len(active)
        active = active[self._rotation :] + active[: self._rotation]
        leases: list[Lease] = []
        waits: list[float] = []
        while active and len(leases) < limit:
            # Shares in proportion to each shard's types: an equal share per type.
            left = limit - len(leases)
            weights = [len(groups[shard]) for shard in active]
            wants = [left * weight // sum(weights) for weight in weights]
            for index in range(left - sum(wants)):  # the remainder, in the rotated order
                wants[index % len(wants)] += 1
            replies = await _all(
                self._claim_shard(shard, groups[shard], want, lease_ms)
                for shard, want in zip(active, wants, strict=True)
                if want > 0
            )
            asked = [(shard, want) for shard, want in zip(active, wants, strict=True) if want]
            # A shard that filled its share may hold more; one that got no share
            # this round has not been asked yet. Each round ends at least one of
            # the others, or fills the claim, so the rounds are few.
            still = [shard for shard, want in zip(active, wants, strict=True) if not want]
            for (shard, want), (got, wait_s) in zip(asked, replies, strict=True):
                leases += got
                if wait_s is not None:
                    waits.append(wait_s)
                if len(got) == want:
                    still.append(shard)
            active = still
        return leases, (min(waits) if waits else None)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if self._shard_count == 1:
            return await self._settle_shard(0, outcomes)
        return await self._per_shard(
            outcomes, lambda outcome: outcome.job_id, self._settle_shard, False
        )

    async def _settle_shard(self, shard: int, outcomes: Sequence[Outcome]) -> list[bool]:
        results: list[bool] = []
        for start in range(0, len(outcomes), _CHUNK):
            chunk = outcomes[start : start + _CHUNK]
            # Plain completions travel packed in one argument (see settle.lua):
            # redis-py encodes each argument in Python, seven per outcome otherwise.
            plain: list[int] = []
            packed: list[str] = []
            args: list[_Arg] = [self._namespaces[shard], ""]
            for index, outcome in enumerate(chunk):
                if (
                    outcome.kind is OutcomeKind.COMPLETE
                    and outcome.result is None
                    and not outcome.error
                    and "\0" not in outcome.job_id
                    and "\0" not in outcome.token
                ):
                    plain.append(index)
                    packed += (outcome.job_id, outcome.token)
                    continue
                args += [
                    outcome.job_id,
                    outcome.token,
                    _KINDS[outcome.kind],
                    "0" if outcome.result is None else "1",
                    outcome.result or b"",
                    outcome.error or "",
                    "" if outcome.retry_delay_ms is None else outcome.retry_delay_ms,
                ]
            args[1] = "\0".join(packed)
            with _translated():
                applied = await self._script("settle", args, keys=self._shard_keys[shard]["settle"])
            flags = [flag == 1 for flag in applied]
            if len(plain) == len(chunk) or not plain:
                results += flags
                continue
            # The packed verdicts come first in the reply: put them back in order.
            ordered: list[bool] = [False] * len(chunk)
            rest = iter(flags[len(plain) :])
            is_plain = set(plain)
            for position, flag in zip(plain, flags, strict=False):
                ordered[position] = flag
            for index in range(len(chunk)):
                if index not in is_plain:
                    ordered[index] = next(rest)
            results += ordered
        return results

    async def renew(self, leases: Sequence[tuple[str, str]], *, lease_ms: int) -> list[LeaseState]:
        async def renew_shard(shard: int, part: Sequence[tuple[str, str]]) -> list[LeaseState]:
            return await self._renew_shard(shard, part, lease_ms)

        if self._shard_count == 1:
            return await renew_shard(0, leases)
        return await self._per_shard(leases, lambda lease: lease[0], renew_shard, LeaseState.LOST)

    async def _renew_shard(
        self, shard: int, leases: Sequence[tuple[str, str]], lease_ms: int
    ) -> list[LeaseState]:
        states: list[LeaseState] = []
        keys = self._shard_keys[shard]["renew"]
        for start in range(0, len(leases), _CHUNK):
            args: list[_Arg] = [self._namespaces[shard], lease_ms]
            for job_id, token in leases[start : start + _CHUNK]:
                args += [job_id, token]
            reply = await self._read(self._call("renew", args, keys))
            states += [_LEASE_STATES[int(code)] for code in reply]
        return states

    async def requeue_expired(self, *, limit: int = 1_000, lock_ms: int = 0) -> int:
        """The sweep, shard by shard: each shard has its own lock and ``limit``."""
        swept = await _all(
            self._requeue_shard(shard, limit, lock_ms) for shard in range(self._shard_count)
        )
        return sum(swept)

    async def _requeue_shard(self, shard: int, limit: int, lock_ms: int) -> int:
        args: list[_Arg] = [
            self._namespaces[shard],
            limit,
            DEFAULT_MAX_ATTEMPTS,
            MAX_UNCONFIRMED_DELIVERIES,
            max(lock_ms, 0),
            self._sweeper_id,
        ]
        with _translated():
            expired, _forgotten = await self._script(
                "requeue", args, keys=self._shard_keys[shard]["requeue"]
            )
        return max(int(expired), 0)

    # -- operators -------------------------------------------------------------

    async def list_jobs(self, query: JobQuery) -> JobPage:
        after = decode_cursor(query.cursor)
        limit = max(query.limit, 0)
        if limit == 0:
            return JobPage([], "")
        statuses = [query.status] if query.status is not None else list(JobStatus)
        args: list[_Arg] = [
            min(limit, _MAX_PAGE) + 1,
            ",".join(str(int(status)) for status in statuses),
            query.type or "",
        ]
        if after is not None:
            args += [int(after.status), after.type, after.position, after.job_id]
        if query.type:
            shards = [shard_of_type(query.type, self._shard_count)]
        else:
            shards = list(range(self._shard_count))
        # Each shard returns its first page in the one listing order; its types
        # are its own, so merging the pages gives the first page of all (a page
        # costs a page per shard).
        pages = await _all(self._list_shard(shard, args) for shard in shards)
        rows = list(heapq.merge(*pages, key=lambda row: _listing_order(row[0])))
        more = len(rows) > limit
        page = [job for _, job in rows[:limit]]
        cursor = encode_cursor(rows[limit - 1][0]) if more else ""
        return JobPage(page, cursor)

    async def _list_shard(self, shard: int, tail: list[_Arg]) -> list[tuple[ListPosition, Job]]:
        args: list[_Arg] = [self._namespaces[shard], *tail]
        flat = await self._read(self._call("list", args, self._shard_keys[shard]["list"]))
        rows = []
        for i in range(0, len(flat), 5):
            job_id = flat[i + 3].decode()
            status = JobStatus(int(flat[i]))
            position = ListPosition(status, flat[i + 1].decode(), int(flat[i + 2]), job_id)
            rows.append((position, job_from_hash(job_id, pairs_to_dict(flat[i + 4]))))
        return rows

    async def stats(self) -> QueueStats:
        replies = await _all(self._stats_shard(shard) for shard in range(self._shard_count))
        counted = sorted(row for _, rows in replies for row in rows)
        omitted = sum(omitted for omitted, _ in replies) + max(len(counted) - _MAX_STATS_TYPES, 0)
        rows = [
            TypeStats(type=job_type, **dict(zip(_STAT_NAMES, counts, strict=True)))
            for job_type, counts in counted[:_MAX_STATS_TYPES]
            if any(counts)
        ]
        return QueueStats(types=rows, omitted_types=omitted)

    async def _stats_shard(self, shard: int) -> tuple[int, list[tuple[str, tuple[int, ...]]]]:
        """The shard's first 1,000 types by name, counted a step of types per script call.

        One call for 1,000 types held Redis 12-20 ms (tests/faults scenario 10);
        a step of ``_STATS_STEP`` keeps each under a few ms, other callers between.
        """
        rows: list[tuple[str, tuple[int, ...]]] = []
        holding = 0
        after = ""
        while len(rows) < _MAX_STATS_TYPES:
            step = min(_STATS_STEP, _MAX_STATS_TYPES - len(rows))
            args: list[_Arg] = [self._namespaces[shard], step, after]
            flat = await self._read(self._call("stats", args, self._shard_keys[shard]["stats"]))
            holding = int(flat[0])
            rows += [
                (flat[i].decode(), tuple(int(n) for n in flat[i + 1 : i + 7]))
                for i in range(1, len(flat), 7)
            ]
            if len(flat) - 1 < 7 * step:
                break
            after = rows[-1][0]
        return max(holding - len(rows), 0), rows

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        # Subscribed (on the store's shared pub/sub connection) before the
        # first read, so no change after that read goes unseen.
        ns = self._namespaces[shard_of_id(job_id, self._shard_count)]
        job_key = (ns + "j:" + job_id,)
        with _translated():
            events = await self._subscriber.listen(ns + "ev:" + job_id, max_messages=1)
        try:
            with _translated():
                fields = await self._script("watchers", [ns, job_id, 1], keys=job_key)
        except BaseException:
            events.close()
            raise
        try:
            job = self._visible(job_id, pairs_to_dict(fields)) if fields else None
            if job is None:
                raise JobNotFound(job_id)
            last: Job | None = None
            while job is not None:
                if job != last:
                    last = job
                    yield job
                    if job.status.is_terminal:
                        return
                # Returns on a change, after a reconnect (messages may have been
                # lost), or after a second: re-reading now and then is the safety net.
                await events.wait(1.0)
                if events.closed:
                    raise StoreUnavailable("the store was closed")
                job = await self.get(job_id)
        finally:
            events.close()
            try:
                with _translated():
                    await self._script("watchers", [ns, job_id, -1], keys=job_key)
            except StoreUnavailable:
                pass

    async def cancellations(self) -> AsyncIterator[str]:
        """Ids of RUNNING jobs whose cancel was requested: cancel.lua publishes them.

        Every open iterator of the store shares one subscription of the
        ``cancels`` channel. It listens on through reconnects (requests made
        meanwhile are missed; ``renew`` still reports them) and ends when the
        store closes.
        """
        if self._subscriber.closed:
            return
        with _translated():
            events = await self._subscriber.listen(self._ns + "cancels", confirm=False)
        try:
            while True:
                for message in events.take():
                    yield message.decode()
                if events.closed:
                    return
                await events.wait()
        finally:
            events.close()

    async def ping(self) -> None:
        with _translated():
            await self._hot.execute("PING")

    async def close(self) -> None:
        await self._waits.close()
        await self._subscriber.close()
        await self._connections.aclose()

    # -- internals -------------------------------------------------------------

    def _call(
        self, name: str, args: list[_Arg], keys: Sequence[str]
    ) -> Callable[[], Awaitable[Any]]:
        return lambda: self._script(name, args, keys=keys)

    async def _script(
        self, name: str, args: Sequence[_Arg], keys: Sequence[str] | None = None
    ) -> Any:
        """Run a script by its SHA, sending its source only when Redis lacks it.

        A NOSCRIPT reply means nothing ran, so sending the source (EVAL, which
        also caches it) is safe even for a write. With ``min_replicas``, the
        scripts that acknowledge a write (add, settle, cancel) run on the
        durable connections and wait for the replicas (_durability.py).
        """
        keys = (self._types_key,) if keys is None else keys
        if self._config_pending:
            await self._publish_config()
        run = self._hot.execute
        if self._durable is not None and name in DURABLE_SCRIPTS:
            run = self._durable.execute
        try:
            return await run("EVALSHA", _SHAS[name], len(keys), *keys, *args)
        except rexc.NoScriptError:
            pass
        return await run("EVAL", _SCRIPTS[name], len(keys), *keys, *args)

    async def _read(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent command, retrying on a fresh connection if one broke."""
        for attempt in range(_READ_ATTEMPTS):
            try:
                with _translated():
                    return await call()
            except StoreUnavailable:
                if attempt == _READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _wait_for_wake(self, wake_keys: list[list[str]], timeout_s: float) -> None:
        """Until a wake token is ours or ``timeout_s`` passed (see _waits.py).

        ``wake_keys`` holds one list per shard: one BLPOP cannot span slots, so
        a claimer of several shards waits on each and wakes at the first token
        (a token handed to a wait it then cancels is passed on, see _waits.py).
        """
        timeout_s = max(timeout_s, 0.001)
        with _translated():
            if len(wake_keys) == 1:
                await self._waits.wait(wake_keys[0], timeout_s)
                return
            waits = [asyncio.ensure_future(self._waits.wait(keys, timeout_s)) for keys in wake_keys]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
                outcomes = await asyncio.gather(*waits, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome

    def _visible(self, job_id: str, fields: dict[bytes, bytes]) -> Job | None:
        """The job in a hash, unless the hash is gone (Redis expires it at its retention)."""
        if not fields or b"t" not in fields:
            return None
        return job_from_hash(job_id, fields)

    async def _publish_config(self) -> None:
        settings = self._settings
        fields: list[_Arg] = []
        if settings.retention_ms is not None:
            fields += ["retention_ms", settings.retention_ms]
        if settings.max_finished is not None:
            fields += ["max_finished", settings.max_finished]
        with _translated():
            # Every shard reads its own copy (scripts touch one shard's keys).
            await _all(self._hot.execute("HSET", ns + "cfg", *fields) for ns in self._namespaces)
        self._config_pending = False

    async def _per_shard(
        self,
        items: Sequence[T],
        job_id: Callable[[T], str],
        run: Callable[[int, Sequence[T]], Awaitable[list[R]]],
        missing: R,
    ) -> list[R]:
        """``run`` on each shard's items, all at once; the replies in ``items``' order."""
        parts: dict[int, list[int]] = {}
        for index, item in enumerate(items):
            parts.setdefault(shard_of_id(job_id(item), self._shard_count), []).append(index)
        replies = await _all(
            run(shard, [items[i] for i in indexes]) for shard, indexes in parts.items()
        )
        results = [missing] * len(items)
        for indexes, reply in zip(parts.values(), replies, strict=True):
            for index, result in zip(indexes, reply, strict=True):
                results[index] = result
        return results


async def _all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await calls at once; raise the first failure only once every call has ended.

    ``asyncio.gather`` would raise at the first failure and leave the others
    running unobserved: a write on another shard may still be in flight.
    """
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def _listing_order(position: ListPosition) -> tuple[int, str, int, str]:
    """The listing order list.lua walks: status, type, position, id."""
    return (int(position.status), position.type, position.position, position.job_id)


def _stamped(job: Job, now: int) -> Job:
    """The job as add.lua stored it: created (and, if due at once, due) at Redis's now."""
    due = now if job.execution_time_ms == job.created_at else job.execution_time_ms
    return Job(
        id=job.id,
        type=job.type,
        payload=job.payload,
        status=job.status,
        execution_time_ms=due,
        created_at=now,
        updated_at=now,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        last_error=job.last_error,
        result=job.result,
        cancel_requested=job.cancel_requested,
        idempotency_key=job.idempotency_key,
    )


@dataclass(slots=True)
class _PendingAdd:
    jobs: list[Job]
    batch_key: str | None
    future: asyncio.Future[list[Job]]


_MAX_STATS_TYPES = 1_000
_STATS_STEP = 100
"""Types counted per ``stats.lua`` call."""
"""Most types one ``stats`` call counts: bounds its cost with any number of types."""
_MAX_PAGE = 1_000

_STAT_NAMES = ("pending", "scheduled", "running", "completed", "failed", "cancelled")
