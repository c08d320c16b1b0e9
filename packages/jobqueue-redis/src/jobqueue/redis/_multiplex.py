"""One Redis connection that every concurrent call shares: the store's hot path.

redis-py's asyncio client takes a connection from its pool for each command
and reads the reply through a stream: several event-loop turns and about
100 µs of Python per call on a small machine (docs/benchmarks.md). Here a
call writes its command at once and waits on a future that ``data_received``
resolves, replies being matched to callers by order. Concurrent callers thus
pipeline on one socket, and a call costs one write, one read and one future.

hiredis, the parser redis-py uses too, packs commands and parses replies;
error replies are typed by redis-py's own parser table (``_errors.py``).
redis-py still reads the URL and builds the TLS context, so both connections
of the store honour the same settings, and failures are redis-py's
exception types, which the store translates.

Each (re)connection asks ``resolve`` for the primary's address when one is
given (Sentinel, see ``_topology.py``). A reply saying the node is no
primary now (``READONLY`` after a failover, ``LOADING``...) retires the
connection: later calls open a new one, re-resolved, while the replies
already due on the old one still reach their callers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, cast

import hiredis

from redis import exceptions as rexc
from redis.asyncio.connection import RedisSSLContext
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

from ._errors import is_failover, parse_error_reply
from ._topology import Resolver

_Arg = bytes | str | int | float
_INCOMPLETE = object()
_SSL_OPTIONS = {
    "ssl_keyfile": "keyfile",
    "ssl_certfile": "certfile",
    "ssl_cert_reqs": "cert_reqs",
    "ssl_ca_certs": "ca_certs",
    "ssl_ca_data": "ca_data",
    "ssl_ca_path": "ca_path",
    "ssl_check_hostname": "check_hostname",
    "ssl_min_version": "min_version",
    "ssl_ciphers": "ciphers",
    "ssl_password": "password",
}


class _ReplyProtocol(asyncio.Protocol):
    """Matches replies to waiting calls in the order the commands were written.

    One timer watches the oldest unanswered command, rather than one per
    call: a reply overdue by ``timeout_s`` closes the connection.
    """

    def __init__(self, timeout_s: float) -> None:
        self._parser = hiredis.Reader(
            protocolError=rexc.InvalidResponse,
            replyError=parse_error_reply,
            notEnoughData=_INCOMPLETE,
        )
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._sent_at: deque[float] = deque()
        self._timeout_s = timeout_s
        self._watchdog: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self.closed: BaseException | None = None
        self.retired = False
        self.loop = asyncio.get_running_loop()

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    def retire(self) -> None:
        """Take no new commands; close once the replies already due have arrived."""
        self.retired = True
        if not self._waiting:
            self.close(rexc.ConnectionError("the connection was retired (failover)"))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        try:
            while (reply := self._parser.gets()) is not _INCOMPLETE:
                future = self._waiting.popleft()
                self._sent_at.popleft()
                if not future.done():  # a caller that gave up leaves a done future
                    future.set_result(reply)
                if is_failover(reply):
                    self.retired = True
            if self.retired and not self._waiting:
                self.close(rexc.ConnectionError("the connection was retired (failover)"))
        except (rexc.InvalidResponse, IndexError) as error:
            # A reply nobody asked for, or bytes that are no reply: nothing
            # after it on this socket can be trusted.
            self.close(rexc.ConnectionError(f"Redis sent an unexpected reply: {error!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(rexc.ConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        if self.closed is not None or self._transport is None or self.retired:
            raise rexc.ConnectionError("connection to Redis is closed")
        future = self.loop.create_future()
        self._waiting.append(future)
        self._sent_at.append(self.loop.time())
        self._transport.write(command)
        if self._watchdog is None:
            self._watchdog = self.loop.call_later(self._timeout_s, self._check_overdue)
        return future

    def _check_overdue(self) -> None:
        self._watchdog = None
        if not self._sent_at:
            return
        left = self._sent_at[0] + self._timeout_s - self.loop.time()
        if left > 0:
            self._watchdog = self.loop.call_later(left, self._check_overdue)
        else:
            self.close(rexc.TimeoutError(f"Redis did not answer within {self._timeout_s} s"))

    def close(self, reason: BaseException) -> None:
        self._fail(reason)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, reason: BaseException) -> None:
        if self.closed is None:
            self.closed = reason
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._sent_at.clear()
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(reason)


class MultiplexedConnection:
    """Commands from any number of tasks over one lazily (re)made connection.

    A lost connection fails every call in flight with ``ConnectionError``
    and is made afresh by the next call; nothing is resent, since only the
    caller knows whether a write is safe to repeat. A call that times out
    closes the connection too: a server that stopped answering one call
    will not answer those queued behind it.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float,
        timeout_s: float,
        resolve: Resolver | None = None,
    ) -> None:
        """``resolve``, when given, names the address to connect to (the URL's host is unused)."""
        options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        connection_class = options.pop("connection_class", None)
        self._path: str | None = options.get("path")
        self._host: str = options.get("host", "localhost")
        self._port = int(options.get("port", 6379))
        self._handshake: list[tuple[_Arg, ...]] = []
        password = options.get("password")
        if password is not None:
            username = options.get("username")
            self._handshake.append(("AUTH", username, password) if username else ("AUTH", password))
        if int(options.get("db", 0)):
            self._handshake.append(("SELECT", int(options["db"])))
        self._ssl_options = {
            name: options[key] for key, name in _SSL_OPTIONS.items() if key in options
        }
        if connection_class is SSLConnection:
            self._ssl_options.setdefault("cert_reqs", "required")
            self._ssl_options.setdefault("check_hostname", True)
        self._tls = connection_class is SSLConnection
        if connection_class is not UnixDomainSocketConnection:
            self._path = None
        self._resolve = resolve
        self.address: tuple[str, int] | None = None
        """Where the current connection goes (host, port)."""
        self._connect_timeout_s = connect_timeout_s
        self._timeout_s = timeout_s
        self._protocol: _ReplyProtocol | None = None
        self._connecting: asyncio.Task[_ReplyProtocol] | None = None

    async def execute(self, *args: _Arg) -> Any:
        """Send one command and return its reply; an error reply is raised."""
        protocol = await self._usable()
        reply = await protocol.send(_pack(args))
        if isinstance(reply, rexc.RedisError):
            raise reply
        return reply

    async def execute_in_order(self, *commands: tuple[_Arg, ...]) -> list[Any]:
        """Send ``commands`` back to back on one connection; error replies are returned.

        Nothing of another caller comes between them: what a later command
        covers (``WAIT`` covers its connection's earlier writes) includes the
        earlier ones.
        """
        protocol = await self._usable()
        futures = [protocol.send(_pack(command)) for command in commands]
        return list(await asyncio.gather(*futures))

    async def send_in_order(self, *commands: tuple[_Arg, ...]) -> list[asyncio.Future[Any]]:
        """Send ``commands`` back to back on one connection; a future per reply, in order.

        For a caller that needs an early reply before a later one arrives (the
        ``CLIENT ID`` ahead of a blocking command, _blocking.py). Error replies
        are the futures' results, not their exceptions.
        """
        protocol = await self._usable()
        return [protocol.send(_pack(command)) for command in commands]

    def retire(self) -> None:
        """Make the next call connect afresh (re-resolved); replies due still arrive."""
        if self._protocol is not None:
            self._protocol.retire()

    def abort(self, reason: str) -> None:
        """Close the connection now: calls in flight fail, the next call connects afresh."""
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()  # (_connect closes what it had made)
        if self._protocol is not None:
            self._protocol.close(rexc.ConnectionError(reason))
            self._protocol = None

    @property
    def in_flight(self) -> int:
        """Commands sent and not answered yet: how busy this connection is."""
        protocol = self._protocol
        return 0 if protocol is None or protocol.closed is not None else protocol.in_flight

    async def _usable(self) -> _ReplyProtocol:
        protocol = self._protocol
        if (
            protocol is None
            or protocol.closed is not None
            or protocol.retired
            or protocol.loop is not _loop()
        ):
            protocol = await self._connected()
        return protocol

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        if self._protocol is not None:
            self._protocol.close(rexc.ConnectionError("the store was closed"))
            self._protocol = None

    async def _connected(self) -> _ReplyProtocol:
        # Callers that arrive while a connection is being made share it; the
        # attempt runs as a task of its own, so one caller giving up does not
        # abort it for the rest.
        task = self._connecting
        if task is None or task.done() or task.get_loop() is not _loop():
            task = self._connecting = asyncio.get_running_loop().create_task(self._connect())
        return await asyncio.shield(task)

    async def _connect(self) -> _ReplyProtocol:
        loop = asyncio.get_running_loop()

        def made() -> _ReplyProtocol:
            return _ReplyProtocol(self._timeout_s)

        protocol: _ReplyProtocol | None = None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if self._path is not None and self._resolve is None:
                    _, protocol = await loop.create_unix_connection(made, self._path)
                else:
                    host, port = self._host, self._port
                    if self._resolve is not None:
                        host, port = await self._resolve()
                    tls = RedisSSLContext(**self._ssl_options).get() if self._tls else None
                    _, protocol = await loop.create_connection(made, host, port, ssl=tls)
                    self.address = (host, port)
                for command in self._handshake:
                    reply = await protocol.send(_pack(command))
                    if isinstance(reply, rexc.RedisError):
                        # A subclass of ConnectionError, as redis-py raises it.
                        raise rexc.AuthenticationError(f"Redis refused {command[0]!s}: {reply}")
                if self._resolve is not None:
                    # Sentinel may name a node before it is promoted, or one it
                    # is about to demote: only a primary is worth keeping.
                    role = await protocol.send(_pack(("ROLE",)))
                    if isinstance(role, rexc.RedisError) or role[0] != b"master":
                        raise rexc.ConnectionError(f"{self.address} is no primary now")
        except BaseException as error:
            # Never leave a half-made connection open (a refused login, a
            # handshake that timed out, a cancelled attempt).
            if protocol is not None:
                protocol.close(rexc.ConnectionError("the connection attempt failed"))
            if isinstance(error, TimeoutError):
                raise rexc.TimeoutError(
                    f"could not connect to Redis in {self._connect_timeout_s} s"
                ) from None
            if isinstance(error, OSError):
                raise rexc.ConnectionError(f"could not connect to Redis: {error}") from error
            raise
        if protocol is None:  # create_connection returns one or raises
            raise rexc.ConnectionError("could not connect to Redis")
        self._protocol = protocol
        return protocol


def _pack(command: tuple[_Arg, ...]) -> bytes:
    # hiredis's stub types the argument as a 1-tuple; any length is accepted.
    return cast(bytes, hiredis.pack_command(cast(Any, command)))


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()
