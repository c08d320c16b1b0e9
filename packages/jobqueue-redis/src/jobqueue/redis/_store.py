"""The JobStore port on Redis: one hash per job, sorted sets per type, Lua for every change."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
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
_Arg = bytes | str | int | float


def _load_scripts() -> dict[str, str]:
    folder = resources.files(__package__).joinpath("lua")
    common = folder.joinpath("_common.lua").read_text()
    names = ("add", "claim", "settle", "renew", "cancel", "requeue", "stats", "list", "watchers")
    return {name: common + folder.joinpath(f"{name}.lua").read_text() for name in names}


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
        args: list[_Arg] = [self._ns, batch_key or ""]
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
            reply = await self._script("add", args)
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
        key = self._ns + "j:" + job_id
        fields = await self._read(lambda: self._hot.execute("HGETALL", key))
        return self._visible(job_id, pairs_to_dict(fields))

    async def cancel(self, job_id: str) -> Job:
        args: list[_Arg] = [self._ns, job_id]
        with _translated():
            reply = await self._script("cancel", args)
        verdict = reply[0]
        if verdict == b"missing":
            raise JobNotFound(job_id)
        if verdict == b"finished":
            raise JobAlreadyFinished(job_id, JobStatus(int(reply[1])).name)
        return job_from_hash(job_id, pairs_to_dict(reply[1]))

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
        wake_keys = [self._ns + "w:" + t for t in order]
        while True:
            self._rotation = (self._rotation + 1) % len(order)
            rotated = order[self._rotation :] + order[: self._rotation]
            token_base = secrets.token_hex(6) + ":"
            args: list[_Arg] = [self._ns, limit, lease_ms, token_base, *rotated]
            with _translated():
                reply = await self._script("claim", args)
            now = int(reply[1])  # Redis's time: deadlines and due times count from it
            leases = [
                Lease(
                    job_from_hash(reply[i].decode(), pairs_to_dict(reply[i + 2])),
                    reply[i + 1].decode(),
                    now + lease_ms,
                )
                for i in range(2, len(reply), 3)
            ]
            remaining = give_up_at - loop.time()
            if leases or remaining <= 0:
                return leases
            next_due = int(reply[0])
            if next_due >= 0:
                remaining = min(remaining, max(next_due - now, 0) / 1000)
            await self._wait_for_wake(wake_keys, remaining)

    async def settle(self, outcomes: Sequence[Outcome]) -> list[bool]:
        results: list[bool] = []
        for start in range(0, len(outcomes), _CHUNK):
            chunk = outcomes[start : start + _CHUNK]
            # Plain completions travel packed in one argument (see settle.lua):
            # redis-py encodes each argument in Python, seven per outcome otherwise.
            plain: list[int] = []
            packed: list[str] = []
            args: list[_Arg] = [self._ns, ""]
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
                applied = await self._script("settle", args)
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
        states: list[LeaseState] = []
        for start in range(0, len(leases), _CHUNK):
            args: list[_Arg] = [self._ns, lease_ms]
            for job_id, token in leases[start : start + _CHUNK]:
                args += [job_id, token]
            reply = await self._read(self._call("renew", args))
            states += [_LEASE_STATES[int(code)] for code in reply]
        return states

    async def requeue_expired(self, *, limit: int = 1_000, lock_ms: int = 0) -> int:
        args: list[_Arg] = [
            self._ns,
            limit,
            DEFAULT_MAX_ATTEMPTS,
            MAX_UNCONFIRMED_DELIVERIES,
            max(lock_ms, 0),
            self._sweeper_id,
        ]
        with _translated():
            expired, _forgotten = await self._script("requeue", args)
        return max(int(expired), 0)

    # -- operators -------------------------------------------------------------

    async def list_jobs(self, query: JobQuery) -> JobPage:
        after = decode_cursor(query.cursor)
        limit = max(query.limit, 0)
        if limit == 0:
            return JobPage([], "")
        statuses = [query.status] if query.status is not None else list(JobStatus)
        args: list[_Arg] = [
            self._ns,
            min(limit, _MAX_PAGE) + 1,
            ",".join(str(int(status)) for status in statuses),
            query.type or "",
        ]
        if after is not None:
            args += [int(after.status), after.type, after.position, after.job_id]
        flat = await self._read(self._call("list", args))
        positions: list[ListPosition] = []
        jobs: list[Job] = []
        for i in range(0, len(flat), 5):
            job_id = flat[i + 3].decode()
            status = JobStatus(int(flat[i]))
            positions.append(ListPosition(status, flat[i + 1].decode(), int(flat[i + 2]), job_id))
            jobs.append(job_from_hash(job_id, pairs_to_dict(flat[i + 4])))
        more = len(jobs) > limit
        page = jobs[:limit]
        cursor = encode_cursor(positions[limit - 1]) if more else ""
        return JobPage(page, cursor)

    async def stats(self) -> QueueStats:
        args: list[_Arg] = [self._ns, _MAX_STATS_TYPES]
        flat = await self._read(self._call("stats", args))
        rows = []
        for i in range(1, len(flat), 7):
            counts = [int(n) for n in flat[i + 1 : i + 7]]
            if any(counts):
                rows.append(
                    TypeStats(type=flat[i].decode(), **dict(zip(_STAT_NAMES, counts, strict=True)))
                )
        return QueueStats(types=rows, omitted_types=int(flat[0]))

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        # Subscribed (on the store's shared pub/sub connection) before the
        # first read, so no change after that read goes unseen.
        with _translated():
            events = await self._subscriber.listen(self._ns + "ev:" + job_id, max_messages=1)
        try:
            with _translated():
                fields = await self._script("watchers", [self._ns, job_id, 1], keys=())
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
                    await self._script("watchers", [self._ns, job_id, -1], keys=())
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

    def _call(self, name: str, args: list[_Arg]) -> Callable[[], Awaitable[Any]]:
        return lambda: self._script(name, args)

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

    async def _wait_for_wake(self, wake_keys: list[str], timeout_s: float) -> None:
        """Until a wake token for ``wake_keys`` is ours or ``timeout_s`` passed (see _waits.py)."""
        with _translated():
            await self._waits.wait(wake_keys, max(timeout_s, 0.001))

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
            await self._hot.execute("HSET", self._ns + "cfg", *fields)
        self._config_pending = False


def _stamped(job: Job, now: int) -> Job:
    """The job as add.lua stored it: created (and, if due at once, due) at Redis's now."""
    due = now if job.execution_time_ms == job.created_at else job.execution_time_ms
    return dataclasses.replace(job, created_at=now, updated_at=now, execution_time_ms=due)


@dataclass(slots=True)
class _PendingAdd:
    jobs: list[Job]
    batch_key: str | None
    future: asyncio.Future[list[Job]]


_MAX_STATS_TYPES = 1_000
"""Most types one ``stats`` call counts: bounds its cost with any number of types."""
_MAX_PAGE = 1_000

_STAT_NAMES = ("pending", "scheduled", "running", "completed", "failed", "cancelled")
