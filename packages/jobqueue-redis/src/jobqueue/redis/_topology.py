"""Where the primary is: one address from the URL, or whichever one Sentinel names now.

A store holds three kinds of connection (the multiplexed one, the blocking
pool, the subscriber). Each asks this module for the primary's address every
time it (re)connects, so after a failover every one of them reaches the new
primary by its next connection, with no restart.

URL forms:

- ``redis://[user:password@]host:port/db`` and ``rediss://`` (TLS), as redis-py
  reads them;
- ``redis+sentinel://[user:password@]host:26379,host:26380/service/db`` and
  ``rediss+sentinel://`` (TLS to the data nodes). The user and password are
  the data nodes'; sentinels that require a password of their own take
  ``sentinel_username`` and ``sentinel_password`` query options, and
  ``sentinel_ssl=true`` when they speak TLS. Other query options (``ssl_*``)
  are redis-py's, as on ``rediss://``.

Sentinel is redis-py's asyncio Sentinel support (``redis.asyncio.sentinel``):
its ``discover_master`` and its ``SentinelConnectionPool``, whose connections
ask Sentinel on each connect and drop themselves on ``READONLY``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.connection import SSLConnection, parse_url

_SENTINEL_SCHEMES = {"redis+sentinel": "redis", "rediss+sentinel": "rediss"}
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password", "sentinel_ssl")
DEFAULT_SENTINEL_PORT = 26379

Resolver = Callable[[], Awaitable[tuple[str, int]]]
"""The primary's (host, port) now; raises ``redis.ConnectionError`` when none is known."""


@dataclass(frozen=True, slots=True)
class SentinelAddress:
    """What a ``redis+sentinel://`` URL names."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    data_url: str
    """The equivalent ``redis://`` URL of the data nodes (its host a placeholder)."""
    sentinel_options: dict[str, Any]


def parse_sentinel_url(url: str) -> SentinelAddress | None:
    """The Sentinel addresses, service and data-node options of ``url``; None for other URLs.

    Raises ValueError when a ``redis+sentinel`` URL lacks sentinels or a service name.
    """
    parts = urlsplit(url)
    scheme = _SENTINEL_SCHEMES.get(parts.scheme)
    if scheme is None:
        return None
    hosts = parts.netloc.rpartition("@")[2]
    sentinels: list[tuple[str, int]] = []
    for item in hosts.split(","):
        if not item:
            continue
        if item.startswith("["):  # [::1]:26379
            host, _, rest = item[1:].partition("]")
            port = rest.lstrip(":") or DEFAULT_SENTINEL_PORT
        else:
            host, _, port_text = item.partition(":")
            port = port_text or DEFAULT_SENTINEL_PORT
        sentinels.append((unquote(host), int(port)))
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not sentinels or not path:
        raise ValueError(
            "a Sentinel URL is redis+sentinel://host:26379[,host:port...]/<service>[/<db>]"
        )
    service = path[0]
    db = path[1] if len(path) > 1 else "0"
    query = parse_qsl(parts.query)
    sentinel_options: dict[str, Any] = {}
    data_query: list[tuple[str, str]] = []
    for name, value in query:
        if name in _SENTINEL_OPTIONS:
            key = name.removeprefix("sentinel_")
            sentinel_options[key] = value.lower() in ("1", "true", "yes") if key == "ssl" else value
        else:
            data_query.append((name, value))
    credentials = parts.netloc.rpartition("@")[0]
    netloc = (credentials + "@" if credentials else "") + "sentinel-discovered"
    data_url = urlunsplit((scheme, netloc, f"/{db}", urlencode(data_query), ""))
    return SentinelAddress(tuple(sentinels), service, data_url, sentinel_options)


class KeptSentinel(Sentinel):
    """redis-py's Sentinel, with every sentinel kept in its list, once, whatever runs at once.

    Its ``discover_master`` moves the sentinel that answered to the front with
    ``sentinels[0], sentinels[n] = sentinel, sentinels[0]``, reading
    ``sentinels[0]`` only after its awaits. During a failover every connection
    of a store reconnects at once, and the first sentinel may still call the
    old primary down: two discoveries that both went on to the second then
    leave it listed twice and the first one gone. A dropped client is never
    asked again, and ``aclose`` never closes it, so its connections leaked
    (the unclosed sentinel connections of tests/redis/test_sentinel.py's
    killed-primary test). Each discovery here ends with the list made whole.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.every: tuple[Any, ...] = tuple(self.sentinels)
        """Every sentinel client this made: the ones ``aclose`` closes."""

    async def discover_master(self, service_name: str) -> Any:
        try:
            return await super().discover_master(service_name)
        finally:
            self._list_every_sentinel()

    async def aclose(self) -> None:
        self._list_every_sentinel()
        await super().aclose()

    def _list_every_sentinel(self) -> None:
        """Each client once, in the list's order, the ones it lost after them."""
        listed: list[Any] = []
        for client in (*self.sentinels, *self.every):
            if all(client is not other for other in listed):
                listed.append(client)
        self.sentinels[:] = listed


class Topology:
    """Makes every connection of a store, each finding the primary when it connects.

    ``url`` is a plain Redis URL or a Sentinel one (see the module's doc).
    ``connect_timeout_s`` and ``socket_timeout_s`` apply to the sentinels too.
    """

    def __init__(self, url: str, *, connect_timeout_s: float, socket_timeout_s: float) -> None:
        self._url = url
        self._sentinel_address = parse_sentinel_url(url)
        self._sentinel: KeptSentinel | None = None
        self._next_check: asyncio.Future[set[tuple[str, int]]] | None = None
        self._checker: asyncio.Task[None] | None = None
        self._on_switch: list[Callable[[], None]] = []
        self._closed = False
        self._watcher: asyncio.Task[None] | None = None
        if self._sentinel_address is not None:
            address = self._sentinel_address
            self._sentinel = KeptSentinel(
                list(address.sentinels),
                sentinel_kwargs={
                    "socket_connect_timeout": connect_timeout_s,
                    "socket_timeout": socket_timeout_s,
                    **address.sentinel_options,
                },
            )

    @property
    def is_sentinel(self) -> bool:
        return self._sentinel is not None

    @property
    def data_url(self) -> str:
        """A redis:// URL carrying the data nodes' credentials, database and TLS options."""
        if self._sentinel_address is not None:
            return self._sentinel_address.data_url
        return self._url

    @property
    def resolver(self) -> Resolver | None:
        """Asks Sentinel for the primary, for connections that resolve it themselves."""
        if self._sentinel is None or self._sentinel_address is None:
            return None
        sentinel, service = self._sentinel, self._sentinel_address.service

        async def primary() -> tuple[str, int]:
            if self._closed:  # a late reconnect must not reopen the sentinels' clients
                raise rexc.ConnectionError("the store was closed")
            self._watch()
            host, port = await sentinel.discover_master(service)
            return str(host), int(port)

        return primary

    def on_switch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the sentinels announce a new primary (``+switch-master``).

        Without it, connections to a primary demoted by ``SENTINEL FAILOVER``
        would stay open and writing until Sentinel reconfigures that node,
        about ten seconds later, and every write of those seconds would be lost.
        """
        self._on_switch.append(callback)

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        if self._watcher is None or self._watcher.done() or self._watcher.get_loop() is not loop:
            self._watcher = loop.create_task(self._watch_switches())

    async def _watch_switches(self) -> None:
        """Listen to ``+switch-master`` on one sentinel after another, until closed."""
        if self._sentinel is None or self._sentinel_address is None:
            return
        service = self._sentinel_address.service.encode()
        nodes = self._sentinel.sentinels
        attempt = 0
        while True:  # ends when the task is cancelled (aclose)
            node = nodes[attempt % len(nodes)]
            attempt += 1
            pubsub = node.pubsub()
            try:
                await pubsub.subscribe("+switch-master")
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None:
                        continue
                    data = message.get("data")
                    if isinstance(data, bytes) and data.split(b" ", 1)[0] == service:
                        for callback in self._on_switch:
                            callback()
            except Exception:  # a sentinel went away: listen on the next
                await asyncio.sleep(0.2)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def client(self, **options: Any) -> aioredis.Redis:
        """A redis-py client (with its own pool) of the primary."""
        if self._sentinel is None or self._sentinel_address is None:
            return aioredis.Redis.from_url(self._url, **options)
        # from_pool: the client owns the pool, so closing it closes the connections.
        return aioredis.Redis.from_pool(self.pool(**options))

    def pool(self, **options: Any) -> aioredis.ConnectionPool:
        """A redis-py pool of the primary: Sentinel-managed when the URL names sentinels."""
        if self._sentinel is None or self._sentinel_address is None:
            return aioredis.ConnectionPool.from_url(self._url, **options)
        data: dict[str, Any] = parse_url(self.data_url)  # type: ignore[no-untyped-call]
        data.pop("host", None)
        data.pop("port", None)
        ssl = data.pop("connection_class", None) is SSLConnection
        return SentinelConnectionPool(  # type: ignore[no-untyped-call]
            self._sentinel_address.service,
            self._sentinel,
            ssl=ssl,
            **data,
            **options,
        )

    async def still_primary(self, address: tuple[str, int]) -> bool:
        """Whether the sentinels still name ``address`` as the primary, with no failover begun.

        A durable write asks this after its ``WAIT``: during a failover the
        old primary keeps accepting writes, and a replica not yet moved to the
        new primary acknowledges them, yet both are about to be overwritten
        by the promoted node. A write acknowledged around then must fail
        instead. A majority of sentinels must answer, and every answer must
        name ``address`` and no failover in progress. Concurrent callers share
        one round of questions, which starts after each of them asked.
        """
        if self._sentinel is None:
            return True
        if self._closed:
            return False
        loop = asyncio.get_running_loop()
        if self._next_check is None or self._next_check.get_loop() is not loop:
            self._next_check = loop.create_future()
            if (
                self._checker is None
                or self._checker.done()
                or self._checker.get_loop() is not loop
            ):
                self._checker = loop.create_task(self._run_checks())
        named = await asyncio.shield(self._next_check)
        return named == {address}

    async def _run_checks(self) -> None:
        while self._next_check is not None:
            future, self._next_check = self._next_check, None
            try:
                answer = await self._ask_sentinels()
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
                continue
            if not future.done():
                future.set_result(answer)

    async def _ask_sentinels(self) -> set[tuple[str, int]]:
        """The primaries the sentinels name; empty when one is failing over or few answer."""
        if self._sentinel is None or self._sentinel_address is None:
            return set()
        service = self._sentinel_address.service
        replies = await asyncio.gather(
            *(node.sentinel_master(service) for node in self._sentinel.sentinels),
            return_exceptions=True,
        )
        states = [reply for reply in replies if isinstance(reply, dict)]
        if len(states) * 2 <= len(replies):
            return set()
        named: set[tuple[str, int]] = set()
        for state in states:
            if "failover_in_progress" in str(state.get("flags", "")) or not state.get("is_master"):
                return set()
            named.add((str(state["ip"]), int(state["port"])))
        return named

    async def aclose(self) -> None:
        self._closed = True
        for task in (self._checker, self._watcher):
            if task is not None and not task.done():
                task.cancel()
                # Its questions hold sentinel connections: let them go before closing.
                await asyncio.gather(task, return_exceptions=True)
        self._checker = self._watcher = None
        if self._next_check is not None and not self._next_check.done():
            self._next_check.cancel()
        self._next_check = None
        if self._sentinel is not None:
            await self._sentinel.aclose()
