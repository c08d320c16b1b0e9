"""Blocking waits (BLPOP) on connections of their own, made as the hot one is (_multiplex.py).

An idle worker's claim blocks on its types' wake lists until a producer
pushes a token (_waits.py); the wake is on the path of every job's start
latency. A BLPOP holds its connection until a token arrives or its timeout
passes, so it cannot share the multiplexed connection, and redis-py's pool
costs about 80 µs of Python per command on a small machine, against about
11 µs for the same command written straight to a socket and parsed by hiredis
(docs/benchmarks.md, issue 17). So each wait takes an idle connection here,
or makes one (``WakeWaits`` bounds how many wait at once), and writes one
command on it.

A wait cut short (cancelled, or given up by its caller) drops its
connection: Redis would still pop a token for it, and the reply would reach
nobody. Closing the connection unblocks the command instead, as redis-py does.
A token popped just as the wait is cut short may still be lost, as there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rexc

from ._multiplex import MultiplexedConnection

_BACKSTOP_S = 1.0
"""How much longer Redis holds a ``blpop_then`` wait than its caller's deadline, which
ends it sooner with CLIENT UNBLOCK; this ends it should that command be lost."""


class Switched(Exception):
    """A wait was dropped because a new primary was announced; nothing behind it ran there."""


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a future's failure as seen: a wait given up may never read it."""
    if not future.cancelled():
        future.exception()


def _copy_reply(sent: asyncio.Future[Any], into: asyncio.Future[Any]) -> None:
    """``into`` gets ``sent``'s reply, or its failure as a value."""
    if into.done():
        return
    if sent.cancelled():
        into.set_result(rexc.ConnectionError("the connection was dropped"))
    elif sent.exception() is not None:
        into.set_result(sent.exception())
    else:
        into.set_result(sent.result())


@dataclass(slots=True)
class _Wait:
    """A ``blpop_then`` wait: its connection's id, how to end it, when its caller is done.

    ``client_id`` resolves to CLIENT ID's reply, or to the error that kept it
    from coming (a value either way, never raised).
    """

    client_id: asyncio.Future[Any]
    unblock: Callable[[int], Awaitable[Any]]
    done: asyncio.Future[None]


class BlockingConnections:
    """Connections for blocking commands, one command on each at a time.

    Args:
        make: a new connection, unconnected (it connects on first use, to
            the address the store's topology names then).
    """

    def __init__(self, make: Callable[[], MultiplexedConnection]) -> None:
        self._make = make
        self._idle: list[MultiplexedConnection] = []
        self._busy: set[MultiplexedConnection] = set()
        self._claiming: dict[MultiplexedConnection, _Wait] = {}
        """Busy connections with a command behind their BLPOP (``blpop_then``)."""
        self._closed = False
        self._switched: set[MultiplexedConnection] = set()
        self._background: set[asyncio.Task[None]] = set()
        self.unblock_refused = False
        """True once Redis refused CLIENT ID or CLIENT UNBLOCK (an ACL): no more
        ``blpop_then``, whose waits would end up to ``_BACKSTOP_S`` late."""

    async def blpop(self, keys: Sequence[str], timeout: float) -> Any:  # noqa: ASYNC109 - redis-py's signature
        """``BLPOP keys timeout``: ``[list, token]``, or None once ``timeout`` seconds passed."""
        connection = self._idle.pop() if self._idle else self._make()
        self._busy.add(connection)
        try:
            reply = await connection.execute("BLPOP", *keys, timeout)
        except BaseException:
            self._busy.discard(connection)
            connection.abort("a blocking wait was cut short")
            raise
        self._busy.discard(connection)
        self._idle.append(connection)
        return reply

    async def blpop_then(
        self,
        keys: Sequence[str],
        timeout_s: float,
        command: tuple[Any, ...],
        *,
        unblock: Callable[[int], Awaitable[Any]],
        orphaned: Callable[[Any], None],
        grace_s: float,
    ) -> tuple[Any, Any]:
        """``BLPOP keys`` and ``command`` written together on one connection: both replies.

        Redis keeps a blocked client's later commands in its input buffer and
        runs them the moment the BLPOP returns, in the same turn of its event
        loop: an idle worker's claim follows its wake with no round trip
        between them (_waits.py). Error replies are returned as values.

        The wait ends at ``timeout_s`` by this side's clock: Redis checks a
        blocked command's own timeout only on its timer (every 100 ms at the
        default hz), which would claim a job due now up to 100 ms late. So
        the BLPOP is given ``_BACKSTOP_S`` more, and ``unblock`` (``CLIENT
        UNBLOCK`` of this connection's id, asked for ahead of the BLPOP)
        ends it on time; the command behind it then runs at once.

        A caller that leaves (cancelled) leaves no reply unread: the wait is
        ended the same way in the background, and the command's reply, which
        may hold leases, goes to ``orphaned``. A connection dropped because a
        new primary was announced raises ``Switched``: nothing ran behind it
        on the new primary, and the caller's next command goes there.
        """
        connection = self._idle.pop() if self._idle else self._make()
        self._busy.add(connection)
        loop = asyncio.get_running_loop()
        wait = _Wait(loop.create_future(), unblock, loop.create_future())
        self._claiming[connection] = wait
        try:
            client_id, wake, reply = await connection.send_in_order(
                ("CLIENT", "ID"), ("BLPOP", *keys, timeout_s + _BACKSTOP_S), command
            )
        except BaseException as error:
            switched = connection in self._switched
            self._drop(connection, "a blocking wait was cut short")
            wait.client_id.set_result(rexc.ConnectionError("the wait was never sent"))
            wait.done.set_result(None)
            task = asyncio.current_task()
            if switched and (task is None or not task.cancelling()):
                # Dropped while connecting: abort cancels the connect, which
                # reaches this caller as a cancellation nobody asked for.
                raise Switched from error
            raise
        client_id.add_done_callback(lambda sent: _copy_reply(sent, wait.client_id))
        pair = asyncio.gather(wake, reply)
        for future in (client_id, wake, reply, pair):
            future.add_done_callback(_retrieved)
        try:
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(pair)
            except TimeoutError:
                await self._ended(wait, pair, grace_s)
        except asyncio.CancelledError:
            salvage = loop.create_task(self._salvage(connection, wait, pair, orphaned, grace_s))
            self._background.add(salvage)
            salvage.add_done_callback(self._background.discard)
            raise
        except BaseException as error:
            switched = connection in self._switched
            self._drop(connection, "a blocking wait failed")
            if switched:
                raise Switched from error
            if isinstance(error, TimeoutError):
                raise rexc.TimeoutError("Redis did not answer a blocking wait in time") from None
            raise
        finally:
            if not wait.done.done():
                wait.done.set_result(None)
        self._release(connection)
        wake_reply, command_reply = pair.result()
        return wake_reply, command_reply

    async def _ended(
        self, wait: _Wait, pair: asyncio.Future[tuple[Any, Any]], grace_s: float
    ) -> None:
        """End a wait whose time is up, and wait (at most ``grace_s``) for both replies."""
        async with asyncio.timeout(grace_s):
            if not pair.done():
                await self._unblock(wait)
            await asyncio.shield(pair)

    async def _unblock(self, wait: _Wait) -> None:
        """CLIENT UNBLOCK the wait; where that fails, Redis's own timeout (the backstop) ends it."""
        known = await asyncio.shield(wait.client_id)
        if isinstance(known, BaseException) and not isinstance(known, rexc.NoPermissionError):
            return  # no id (the connection failed): nothing is blocked there to end
        try:
            if isinstance(known, rexc.NoPermissionError):
                raise known
            await wait.unblock(int(known))
        except rexc.NoPermissionError:
            # An ACL that refuses CLIENT ID or UNBLOCK: later waits wait in groups.
            self.unblock_refused = True
        except rexc.RedisError:
            pass  # the shared connection failing, a busy script: the backstop ends it

    async def _salvage(
        self,
        connection: MultiplexedConnection,
        wait: _Wait,
        pair: asyncio.Future[tuple[Any, Any]],
        orphaned: Callable[[Any], None],
        grace_s: float,
    ) -> None:
        """After the caller left: end the wait, keep the connection, hand on what ran."""
        try:
            await self._ended(wait, pair, grace_s)
        except BaseException:
            self._drop(connection, "a blocking wait was cut short")
            return  # what ran behind it, if anything, waits for its lease to expire
        self._release(connection)
        orphaned(pair.result()[1])

    async def drain(self, grace_s: float) -> None:
        """End every wait that has a command behind it, and let its replies arrive.

        For a store about to close: each such wait is unblocked (its command
        runs now), and this returns once every caller has its replies and every
        salvage has handed on what it got, or ``grace_s`` passed. Cancelled
        callers' leases are handed back before the store's connections close.
        """
        waits = list(self._claiming.values())
        if not waits:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await asyncio.gather(
                    *(self._unblock(wait) for wait in waits), return_exceptions=True
                )
                await asyncio.gather(*(wait.done for wait in waits))
                await asyncio.sleep(0)  # a cancelled caller's salvage starts on its next step
                await asyncio.gather(*self._background, return_exceptions=True)

    def _release(self, connection: MultiplexedConnection) -> None:
        self._busy.discard(connection)
        self._claiming.pop(connection, None)
        if self._closed:
            connection.abort("the store was closed")
            return
        if connection in self._switched:
            self._switched.discard(connection)
            connection.retire()
        self._idle.append(connection)

    def _drop(self, connection: MultiplexedConnection, reason: str) -> None:
        self._busy.discard(connection)
        self._claiming.pop(connection, None)
        self._switched.discard(connection)
        connection.abort(reason)

    def retire_idle(self) -> None:
        """Make the idle connections reconnect on their next use (a new primary was announced).

        A wait with a command behind it is dropped at once (``Switched``):
        left to its timeout, that command would run on the old primary.
        """
        for connection in self._idle:
            connection.retire()
        for connection in [c for c in self._claiming if c in self._busy]:
            self._switched.add(connection)
            connection.abort("a new primary was announced")

    async def aclose(self) -> None:
        """Close every connection; waits in flight fail with ``ConnectionError``."""
        self._closed = True
        connections = [*self._idle, *self._busy]
        self._idle.clear()
        self._busy.clear()
        for connection in connections:
            await connection.close()
        # Salvages end at once now that their connections are closed.
        await asyncio.gather(*self._background, return_exceptions=True)
        self._idle.clear()
        self._claiming.clear()
        self._switched.clear()
