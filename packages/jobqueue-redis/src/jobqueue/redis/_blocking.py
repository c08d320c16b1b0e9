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

from collections.abc import Callable, Sequence
from typing import Any

from ._multiplex import MultiplexedConnection


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
        timeout: float,  # noqa: ASYNC109 - as blpop's
        command: tuple[Any, ...],
    ) -> list[Any]:
        """``BLPOP keys timeout`` and ``command`` written together on one connection.

        Redis keeps a blocked client's later commands in its input buffer and
        runs them the moment the BLPOP returns (token or timeout), in the same
        turn of its event loop: an idle worker's claim follows its wake with
        no round trip between them (_waits.py). Returns both replies, error
        replies as values; a cut-short wait drops the connection, as ``blpop``'s.
        """
        connection = self._idle.pop() if self._idle else self._make()
        self._busy.add(connection)
        try:
            replies = await connection.execute_in_order(("BLPOP", *keys, timeout), command)
        except BaseException:
            self._busy.discard(connection)
            connection.abort("a blocking wait was cut short")
            raise
        self._busy.discard(connection)
        self._idle.append(connection)
        return replies

    def retire_idle(self) -> None:
        """Make the idle connections reconnect on their next use (a new primary was announced)."""
        for connection in self._idle:
            connection.retire()

    async def aclose(self) -> None:
        """Close every connection; waits in flight fail with ``ConnectionError``."""
        connections = [*self._idle, *self._busy]
        self._idle.clear()
        self._busy.clear()
        for connection in connections:
            await connection.close()
