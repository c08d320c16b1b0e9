"""Idle claims that share blocking waits: one BLPOP per set of wake lists, not per claimer.

An idle claim blocks on its types' wake lists (``w:<type>``) until a
producer pushes a token (add.lua, claim.lua and requeue through ``wake``).
A BLPOP holds its connection for its whole timeout, so one per claimer
exhausted the pool: 36 of 100 idle claims failed with "Too many
connections". Here claimers of one process waiting on the same lists form a
group, and one task blocks for the whole group.

One token wakes one blocked BLPOP, by design: a claimer that finds more work
than it can take pushes a token again (claim.lua), so a burst wakes as many
claimers as it needs, one after another. The group keeps that rule inside the
process: a token wakes its oldest waiter, not all of them, which would turn
every enqueue into as many claim scripts as there are idle claimers. A token
is never dropped: a waiter cancelled after it was handed one passes it to
the next, and a token that arrives when every waiter has left is pushed back.

A claimer alone on its lists in this process (a worker's claim loop, the
common case) waits on its own instead, with its next claim written right
behind the BLPOP (``wait_then``): Redis runs the claim the moment the BLPOP
returns, so a wake costs no round trip before the claim (start latency).
While one such wait is out, later claimers of the same lists form a group as
above, so a server serving many remote workers still blocks once per set of
lists, plus the one solo wait; solo waits hold at most half the connections,
and none is started while a group waits for one.

Distinct groups share at most ``slots`` connections. A group that finds them
all taken waits for one; its claimers time out as usual and return nothing,
as an idle claim that found no job does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as rexc

from ._blocking import Switched
from ._pubsub import raise_if_cancelled

_GIVE_BACK = "if redis.call('LLEN', KEYS[1]) == 0 then redis.call('LPUSH', KEYS[1], 1) end"
"""Put back a wake token nobody here could use, unless one is waiting already (as ``wake``)."""

NOT_RUN: Any = object()
"""``wait_then``'s answer when it waited without running the caller's command."""


@dataclass(slots=True)
class _Group:
    keys: tuple[str, ...]
    waiters: dict[asyncio.Future[str], float] = field(default_factory=dict)
    """Each waiter's future (the wake list its token came from) and deadline, oldest first."""
    task: asyncio.Task[None] | None = None


class WakeWaits:
    """Blocking waits for wake tokens, shared by the claimers of a store."""

    def __init__(
        self,
        blocking: Any,
        execute: Callable[..., Awaitable[Any]],
        *,
        slots: int,
        reply_grace_s: float = 2.0,
        max_block_s: float = 5.0,
    ) -> None:
        """``blocking`` runs the BLPOPs (``blpop(keys, timeout)``: ``BlockingConnections``, or a
        redis-py client with no socket timeout and a pool of at least ``slots``);
        ``execute`` sends one command (to give a token back)."""
        self._blocking = blocking
        self._execute = execute
        self._slot_count = max(slots, 1)
        self._reply_grace_s = reply_grace_s
        self._max_block_s = max_block_s
        self._groups: dict[tuple[str, ...], _Group] = {}
        self._slots = asyncio.Semaphore(self._slot_count)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._solo: set[tuple[str, ...]] = set()
        """Key sets with a solo wait out (``wait_then``)."""

    async def wait_then(
        self,
        keys: Sequence[str],
        timeout_s: float,
        command: tuple[Any, ...],
        orphaned: Callable[[Any], None],
    ) -> Any:
        """Wait as ``wait`` does, then run ``command`` at once, on the wait's own connection.

        Returns the command's reply (an error reply is returned, not raised),
        or ``NOT_RUN`` when it did not run there: this caller waited in a
        group (others in this process wait on ``keys`` already, or the
        blocking connections cannot carry a command behind a BLPOP), or a new
        primary was announced meanwhile. The caller then runs its command
        itself. ``orphaned`` gets the command's reply if the caller is
        cancelled after the wait was sent (_blocking.py). Raises
        ``redis.RedisError`` if the wait failed.
        """
        blpop_then = getattr(self._blocking, "blpop_then", None)
        group_keys = tuple(sorted(set(keys)))
        self._adopt_loop()
        if (
            blpop_then is None
            or getattr(self._blocking, "unblock_refused", False)
            or group_keys in self._groups
            or group_keys in self._solo
            # Solo waits take at most half the connections, and none that a
            # group waits for: under pressure every set of lists waits once.
            or len(self._solo) >= self._slot_count // 2
            or self._slots.locked()
        ):
            await self.wait(keys, timeout_s)
            return NOT_RUN
        self._solo.add(group_keys)
        try:
            try:
                async with asyncio.timeout(max(timeout_s, 0.001)):
                    await self._slots.acquire()
            except TimeoutError:
                return NOT_RUN  # every connection was taken for the whole wait
            try:
                wake, reply = await blpop_then(
                    list(group_keys),
                    min(max(timeout_s, 0.001), self._max_block_s),
                    command,
                    unblock=self._unblock,
                    orphaned=orphaned,
                    grace_s=self._reply_grace_s,
                )
            except Switched:
                return NOT_RUN
            finally:
                self._slots.release()
        finally:
            self._solo.discard(group_keys)
        # A command that ran answers for itself, whatever ended the wait (an
        # operator's CLIENT UNBLOCK ... ERROR, say): its leases are the caller's.
        if isinstance(wake, rexc.RedisError) and not isinstance(reply, list):
            raise wake
        return reply

    async def _unblock(self, client_id: int) -> None:
        """End a blocked wait now, as if its timeout had passed (the command behind it runs)."""
        await self._execute("CLIENT", "UNBLOCK", client_id)

    async def wait(self, keys: Sequence[str], timeout_s: float) -> None:
        """Until a token of one of ``keys`` is handed to this caller, or ``timeout_s`` passes.

        Returns either way: the caller claims once more in both cases.
        Raises ``redis.RedisError`` if the shared wait failed.
        """
        loop = self._adopt_loop()
        group_keys = tuple(sorted(set(keys)))
        group = self._groups.get(group_keys)
        if group is None:
            group = self._groups[group_keys] = _Group(group_keys)
        woken: asyncio.Future[str] = loop.create_future()
        group.waiters[woken] = loop.time() + timeout_s
        if group.task is None:
            group.task = loop.create_task(self._serve(group))
        try:
            async with asyncio.timeout(timeout_s):
                await woken
        except TimeoutError:
            pass  # woken at the last moment or not, the caller claims again
        except asyncio.CancelledError:
            if woken.done() and not woken.cancelled() and woken.exception() is None:
                self._hand_over(group, woken.result())  # a token handed to us: pass it on
            raise
        finally:
            group.waiters.pop(woken, None)
            if woken.done() and not woken.cancelled():
                woken.exception()  # seen, even when a timeout won the race with a failure
            if not group.waiters and group.task is None and self._groups.get(group_keys) is group:
                del self._groups[group_keys]

    async def close(self) -> None:
        """Stop every shared wait (a token taken by one that is cut short may be lost)."""
        tasks = [group.task for group in self._groups.values() if group.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._groups.clear()
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- internals -------------------------------------------------------------

    def _adopt_loop(self) -> asyncio.AbstractEventLoop:
        """Start afresh when called from a new event loop (the old one's tasks are dead)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._groups = {}
            self._slots = asyncio.Semaphore(self._slot_count)
            self._background = set()
            self._solo = set()
        return loop

    async def _serve(self, group: _Group) -> None:
        """Block on the group's lists while it has waiters; hand each token to one of them."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                deadlines = [due for woken, due in group.waiters.items() if not woken.done()]
                if not deadlines:
                    return
                try:
                    async with asyncio.timeout(max(max(deadlines) - loop.time(), 0.001)):
                        await self._slots.acquire()
                except TimeoutError:
                    continue  # its waiters gave up meanwhile; newer ones may remain
                try:
                    deadlines = [due for woken, due in group.waiters.items() if not woken.done()]
                    if not deadlines:
                        return
                    block_s = min(max(max(deadlines) - loop.time(), 0.01), self._max_block_s)
                    try:
                        reply = await asyncio.wait_for(
                            self._blocking.blpop(list(group.keys), timeout=block_s),
                            block_s + self._reply_grace_s,
                        )
                    except TimeoutError:
                        raise rexc.TimeoutError(
                            "Redis did not answer a blocking wait in time"
                        ) from None
                finally:
                    self._slots.release()
                raise_if_cancelled()  # one redis-py's wait_for lost would keep close() waiting
                if reply is not None:
                    key = reply[0]
                    self._hand_over(group, key.decode() if isinstance(key, bytes) else str(key))
        except Exception as error:
            for woken in group.waiters:
                if not woken.done():
                    woken.set_exception(error)
        finally:
            group.task = None
            if not group.waiters and self._groups.get(group.keys) is group:
                del self._groups[group.keys]

    def _hand_over(self, group: _Group, key: str) -> None:
        """Wake the oldest waiter still waiting, or push the token back if there is none."""
        for woken in group.waiters:
            if not woken.done():
                woken.set_result(key)
                return
        task = asyncio.get_running_loop().create_task(self._give_back(key))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _give_back(self, key: str) -> None:
        # If this fails, Redis is failing: the token's loss is the least of it.
        with contextlib.suppress(Exception):
            await self._execute("EVAL", _GIVE_BACK, 1, key)
