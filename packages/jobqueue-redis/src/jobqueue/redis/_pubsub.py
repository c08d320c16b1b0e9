"""One pub/sub connection per store, shared by every watch and cancellation stream.

A pub/sub connection can do nothing else, and redis-py's ``PubSub`` takes one
from the store's pool per subscriber: 1,000 watched jobs wanted 1,000
connections and the pool refused them ("Too many connections"). Here one
task owns one connection, subscribes the channels that in-process listeners
want (many per SUBSCRIBE), routes each message to the listeners of its
channel, and unsubscribes a channel when its last listener leaves.

The connection is made when the first listener arrives. When it fails, the
task reconnects with backoff and subscribes again every channel still
wanted; listeners are told that messages may have been lost in between
(``Listener.wait`` returns), so a watch re-reads its job. Pub/sub is best
effort in Redis itself, and every user of this module has an authority to
fall back on (the job hash, a lease renew).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as rexc
from redis.asyncio.connection import AbstractConnection

from ._listener import Listener

_SUBSCRIBE_CHUNK = 500
"""Most channels in one SUBSCRIBE or UNSUBSCRIBE: bounds one command's size."""
_FAILURES = (rexc.RedisError, OSError)


@dataclass(slots=True)
class _Channel:
    listeners: dict[Listener, None] = field(default_factory=dict)
    on_server: bool = False
    """The last command sent for the channel was SUBSCRIBE."""
    in_flight: deque[list[Listener]] = field(default_factory=deque)
    """Per SUBSCRIBE sent and not yet answered, the listeners its reply confirms."""
    unsent: list[Listener] = field(default_factory=list)
    """Listeners waiting for a SUBSCRIBE not yet sent."""


class Subscriber:
    """The store's single pub/sub connection and the listeners it serves.

    ``sharded``: the channels are Redis 7's shard channels (SSUBSCRIBE,
    published with SPUBLISH), all served by the node this connection reaches
    (a cluster's store has one Subscriber per master, _cluster_pubsub.py).
    """

    def __init__(
        self,
        make_connection: Callable[[], AbstractConnection],
        *,
        sharded: bool = False,
        on_failure: Callable[[BaseException], None] | None = None,
        ping_interval_s: float = 5.0,
        first_backoff_s: float = 0.05,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._make_connection = make_connection
        self._sharded = sharded
        self._on_failure = on_failure
        self._ping_interval_s = ping_interval_s
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self._channels: dict[str, _Channel] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty = asyncio.Event()
        self._retry_now = asyncio.Event()
        self._drop = asyncio.Event()
        self._ping_due = False
        self._closed = False

    async def listen(
        self,
        channel: str,
        *,
        confirm: bool = True,
        max_messages: int = 10_000,
        signal: asyncio.Event | None = None,
    ) -> Listener:
        """A listener of ``channel``; with ``confirm``, only once Redis confirmed the subscription.

        Messages published after a confirmed ``listen`` returns reach the
        listener, unless the connection fails in between. Without
        ``confirm`` it returns at once and the subscription follows,
        through outages too. A confirmed ``listen`` raises
        ``redis.ConnectionError`` if the connection attempt it waited for
        failed.
        """
        if self._closed:
            raise rexc.ConnectionError("the store was closed")
        self._adopt_loop()
        listener = Listener(channel, max_messages=max_messages, signal=signal)
        listener._hub = self
        if confirm:
            listener._confirmed = asyncio.get_running_loop().create_future()
        state = self._channels.setdefault(channel, _Channel())
        state.listeners[listener] = None
        if state.on_server and state.in_flight:
            state.in_flight[-1].append(listener)
        elif state.on_server:
            listener._confirm()
        else:
            state.unsent.append(listener)
            self._dirty.set()
            if confirm:
                self._retry_now.set()  # a caller waits: skip what is left of a backoff
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        if listener._confirmed is not None:
            try:
                await listener._confirmed
            except BaseException:
                listener.close()
                raise
        return listener

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def channels(self) -> list[str]:
        """The channels some in-process listener wants."""
        return [name for name, state in self._channels.items() if state.listeners]

    async def close(self) -> None:
        """Close the connection and every listener; later ``listen`` calls fail."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        closed = rexc.ConnectionError("the store was closed")
        for state in self._channels.values():
            for listener in state.listeners:
                listener.closed = True
                listener._fail(closed)
                listener._interrupt()
        self._channels.clear()

    # -- internals -------------------------------------------------------------

    def _adopt_loop(self) -> None:
        """Start afresh when called from a new event loop (the old one's task is dead)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self._channels = {}
        self._task = None
        self._dirty = asyncio.Event()
        self._retry_now = asyncio.Event()
        self._drop = asyncio.Event()

    def release(self, channel: str) -> list[Listener]:
        """Give up ``channel`` and return its listeners, for another subscriber to ``adopt``."""
        state = self._channels.pop(channel, None)
        if state is None:
            return []
        for listener in state.listeners:
            listener._hub = None
        return list(state.listeners)

    def adopt(self, listener: Listener) -> None:
        """Serve a listener another subscriber released; it is told messages may be lost."""
        if self._closed:
            listener.closed = True
            listener._interrupt()
            return
        self._adopt_loop()
        listener._hub = self
        state = self._channels.setdefault(listener.channel, _Channel())
        state.listeners[listener] = None
        if not state.on_server:
            state.unsent.append(listener)
            self._dirty.set()
        listener._interrupt()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def reconnect(self) -> None:
        """Drop the connection and make a new one (Sentinel announced a new primary).

        Listeners stay subscribed and are told of the reconnect, as after a
        failure: messages published meanwhile may be missed.
        """
        if self._task is not None and not self._task.done():
            self._drop.set()

    def _leave(self, listener: Listener) -> None:
        state = self._channels.get(listener.channel)
        if state is None:
            return
        state.listeners.pop(listener, None)
        if listener in state.unsent:
            state.unsent.remove(listener)
        if not state.listeners:
            if state.on_server:
                self._dirty.set()
            elif not state.in_flight:
                del self._channels[listener.channel]

    async def _run(self) -> None:
        """Connect, serve, and after a failure reconnect with backoff while anyone listens."""
        failures = 0
        while self.channels:
            raise_if_cancelled()
            connection = self._make_connection()
            try:
                await connection.connect()  # type: ignore[no-untyped-call]
                raise_if_cancelled()
                failures = 0
                await self._serve(connection)
            except Exception as error:  # whatever broke, listeners are owed a reconnect
                self._lost(error)
                failures += 1
                if self._on_failure is not None:
                    self._on_failure(error)
            finally:
                await _disconnect(connection)
            if not self.channels:
                return
            backoff = min(self._max_backoff_s, self._first_backoff_s * 2 ** (failures - 1))
            self._retry_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff * random.uniform(0.5, 1.0)):
                    await self._retry_now.wait()

    async def _serve(self, connection: AbstractConnection) -> None:
        """Read and write until the connection fails (it raises) or the task is cancelled."""
        self._dirty.set()  # subscribe everything wanted on the new connection
        self._ping_due = False
        self._drop.clear()
        reader = asyncio.create_task(self._read(connection))
        writer = asyncio.create_task(self._write(connection))
        dropper = asyncio.create_task(self._dropped())
        try:
            done, _ = await asyncio.wait(
                {reader, writer, dropper}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()
        finally:
            for task in (reader, writer, dropper):
                task.cancel()
            await asyncio.gather(reader, writer, dropper, return_exceptions=True)

    async def _dropped(self) -> None:
        await self._drop.wait()
        raise rexc.ConnectionError("a new primary was announced: reconnecting")

    async def _read(self, connection: AbstractConnection) -> None:
        ping_sent = False
        while True:
            # An explicit timeout returns None instead of closing the connection;
            # push_request returns a RESP3 push (a message) instead of reading on.
            reply = await connection.read_response(timeout=self._ping_interval_s, push_request=True)
            raise_if_cancelled()
            if reply is None:
                if ping_sent:
                    raise rexc.TimeoutError("Redis did not answer a PING on the pub/sub connection")
                ping_sent = self._ping_due = True
                self._dirty.set()
                continue
            ping_sent = False
            self._dispatch(reply)

    def _dispatch(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 2:
            return  # PONG outside subscribed mode
        kind, name = reply[0], reply[1]
        if kind == b"pong" or not isinstance(name, bytes):
            return
        channel = name.decode()
        state = self._channels.get(channel)
        if state is None:
            return
        if kind in (b"message", b"smessage") and len(reply) == 3:
            for listener in state.listeners:
                listener._deliver(reply[2])
        elif kind in (b"subscribe", b"ssubscribe") and state.in_flight:
            for listener in state.in_flight.popleft():
                listener._confirm()
        elif kind == b"sunsubscribe" and state.on_server:
            # Not asked for: the channel's slot moved to another node (a
            # reshard). Reconnecting tells listeners that messages may have been
            # missed; the owner of the store routes its channels afresh.
            raise rexc.ConnectionError(f"the slot of shard channel {channel} moved")
        if not state.listeners and not state.on_server and not state.in_flight:
            del self._channels[channel]

    async def _write(self, connection: AbstractConnection) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            subscribe: list[str] = []
            unsubscribe: list[str] = []
            for name, state in self._channels.items():
                if state.listeners and not state.on_server:
                    state.on_server = True
                    state.in_flight.append(state.unsent)
                    state.unsent = []
                    subscribe.append(name)
                elif not state.listeners and state.on_server:
                    state.on_server = False
                    unsubscribe.append(name)
            # Shard channels of one command must share a slot: one per command.
            chunk = 1 if self._sharded else _SUBSCRIBE_CHUNK
            prefix = "S" if self._sharded else ""
            commands: list[tuple[str, ...]] = [
                (prefix + "SUBSCRIBE", *subscribe[i : i + chunk])
                for i in range(0, len(subscribe), chunk)
            ]
            commands += [
                (prefix + "UNSUBSCRIBE", *unsubscribe[i : i + chunk])
                for i in range(0, len(unsubscribe), chunk)
            ]
            if self._ping_due:
                self._ping_due = False
                commands.append(("PING",))
            for command in commands:
                # redis-py would silently reconnect a broken connection on
                # send, without the subscriptions: fail instead.
                if not connection.is_connected:
                    raise rexc.ConnectionError("the pub/sub connection closed")
                await connection.send_command(*command, check_health=False)
                raise_if_cancelled()

    def _lost(self, error: BaseException) -> None:
        """After a failure: fail callers waiting to subscribe, warn the rest, forget the server."""
        failure = error if isinstance(error, rexc.ConnectionError) else None
        failure = failure or rexc.ConnectionError(f"Redis pub/sub failed: {error}")
        for name, state in list(self._channels.items()):
            waiting = [listener for batch in state.in_flight for listener in batch]
            waiting += state.unsent
            state.in_flight.clear()
            state.on_server = False
            state.unsent = []
            for listener in waiting:
                if listener._fail(failure):
                    state.listeners.pop(listener, None)
                    listener._hub = None
                elif listener in state.listeners:
                    state.unsent.append(listener)  # one that asked not to wait waits on
            for listener in state.listeners:
                listener._interrupt()
            if not state.listeners:
                del self._channels[name]


def raise_if_cancelled() -> None:
    """Give back a cancellation redis-py lost.

    On Python 3.11 a task cancelled just as the ``asyncio.wait_for`` inside a
    redis-py call completes loses the cancellation (fixed in 3.12; see
    ``translated`` in _errors.py); a loop of such calls would then never end,
    and ``close`` would wait for it forever. The request still counts in
    ``Task.cancelling()``, and these tasks are never legitimately uncancelled.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _disconnect(connection: AbstractConnection) -> None:
    """Close a connection even while the task is being cancelled."""
    with contextlib.suppress(*_FAILURES):
        await asyncio.shield(connection.disconnect(nowait=True))
