"""Durability on demand: a write acknowledged only once replicas hold it, and start-up checks.

``WAIT n t`` blocks *the connection that sends it* until ``n`` replicas have
acknowledged that connection's earlier writes, or ``t`` ms passed. Sent on the
store's multiplexed connection, it would hold back every read, claim and renew
queued behind it for as long as the replicas take (the whole timeout when one
is down). So durable writes get connections of their own: a small set of
multiplexed connections, each write going to the least busy one, sending its
command and its ``WAIT`` back to back, so the ``WAIT`` covers exactly the
writes sent before it on that connection. Other calls never queue behind a
``WAIT``; ``tests/redis/test_durability.py`` proves it with a replica stopped.

Which calls wait: ``add``, ``settle`` and ``cancel`` (what a producer, a
worker or an operator is told happened), and an operator's ``retry``,
``delete`` and ``bulk`` steps (a delete lost in a failover would bring the
job back). ``claim`` and ``renew`` do not: a
lease lost in a failover makes the job run again (at least once, as a worker
crash does) and the worker's next renew or settle hears LOST; waiting on
every claim would double the latency of the hottest call for no guarantee
the queue does not already give. The lease sweep acknowledges nothing to
anyone and does not wait either.

When fewer replicas acknowledge in time, the call fails with
``StoreUnavailable``. The write *has* applied on the primary and may or may
not survive a failover: a retried enqueue with an idempotency key is safe
(it returns the job stored first); a retried settle answers LOST or repeats
harmlessly; a retried cancel answers the job's state.

Where the server has ``WAITAOF`` (Redis 7.2 and later) and its own
``appendonly`` is on, the write also waits for the primary's fsync of it
(``WAITAOF 1 0 t``); Redis 7.0, as here, has no ``WAITAOF``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from jobqueue.domain import StoreUnavailable
from redis import exceptions as rexc

from ._errors import UNAVAILABLE_ERRORS
from ._settings import RedisStoreSettings

_Arg = bytes | str | int | float
DURABLE_SCRIPTS = frozenset({"add", "settle", "cancel", "retry", "delete", "bulk"})
"""The scripts whose replies acknowledge something to a caller (the module's doc says why)."""
_WAITAOF_SINCE = (7, 2)
_EVICTION_SAFE = "noeviction"

_log = logging.getLogger(__name__)


class OrderedConnection(Protocol):
    """A connection that sends several commands back to back (see ``_multiplex.py``)."""

    @property
    def in_flight(self) -> int: ...

    @property
    def address(self) -> tuple[str, int] | None: ...

    def retire(self) -> None: ...

    async def execute(self, *args: _Arg) -> Any: ...

    async def execute_in_order(self, *commands: tuple[_Arg, ...]) -> list[Any]: ...

    async def close(self) -> None: ...


class DurableWrites:
    """Runs writes that must reach ``min_replicas`` replicas before they are acknowledged."""

    def __init__(
        self,
        make_connection: Callable[[], OrderedConnection],
        *,
        min_replicas: int,
        timeout_ms: int,
        connections: int,
        still_primary: Callable[[tuple[str, int]], Awaitable[bool]] | None = None,
        on_failover: Callable[[], None] | None = None,
    ) -> None:
        """``still_primary`` (Sentinel) fences each acknowledged write against a failover
        begun meanwhile; ``on_failover`` is told when one was seen (to re-resolve others)."""
        self._connections = [make_connection() for _ in range(max(connections, 1))]
        self._still_primary = still_primary
        self._on_failover = on_failover
        self._min_replicas = min_replicas
        self._timeout_ms = timeout_ms
        self._waitaof: bool | None = None
        """Whether to add ``WAITAOF 1 0``: probed once, again after a failure."""

    async def execute(self, *command: _Arg) -> Any:
        """Run ``command``, then wait for the replicas; its reply, or the error Redis sent.

        Raises ``StoreUnavailable`` when too few replicas acknowledged in time
        (the write applied on the primary), and redis-py's errors otherwise.
        """
        connection = min(self._connections, key=lambda c: c.in_flight)
        try:
            if self._waitaof is None:
                self._waitaof = await _has_local_aof(connection)
            waits: list[tuple[_Arg, ...]] = [("WAIT", self._min_replicas, self._timeout_ms)]
            if self._waitaof:
                waits.append(("WAITAOF", 1, 0, self._timeout_ms))
            replies = await connection.execute_in_order(command, *waits)
        except BaseException:
            self._waitaof = None  # perhaps another primary now: probe again
            raise
        reply = replies[0]
        if isinstance(reply, rexc.RedisError):
            raise reply  # the command failed: nothing to wait for
        for wait_reply in replies[1:]:
            if isinstance(wait_reply, rexc.RedisError):
                self._waitaof = None
                raise wait_reply
        acknowledged = int(replies[1])
        if acknowledged < self._min_replicas:
            # Perhaps the replicas moved to a new primary: ask where it is.
            self._failover_seen(connection)
            raise StoreUnavailable(
                f"only {acknowledged} of {self._min_replicas} replicas acknowledged the write "
                f"within {self._timeout_ms} ms: it applied on the primary and may not survive "
                "a failover (retrying is safe: enqueues with an idempotency key are not repeated)"
            )
        if self._waitaof and int(replies[2][0]) < 1:
            raise StoreUnavailable(
                f"Redis did not fsync the write within {self._timeout_ms} ms (WAITAOF)"
            )
        address = connection.address
        fenced = self._still_primary is not None and address is not None
        if fenced and not await self._still_primary(address):  # type: ignore[misc,arg-type]
            self._failover_seen(connection)
            raise StoreUnavailable(
                "a failover began around this write: it applied on the old primary and "
                "may be lost (retrying is safe: enqueues with an idempotency key are not "
                "repeated)"
            )
        return reply

    def retire_all(self) -> None:
        """Make every durable connection connect (and resolve the primary) afresh."""
        for each in self._connections:
            each.retire()

    def _failover_seen(self, connection: OrderedConnection) -> None:
        # Every connection here went to the same node: none should ask it again.
        del connection
        self.retire_all()
        if self._on_failover is not None:
            self._on_failover()

    async def close(self) -> None:
        for connection in self._connections:
            await connection.close()


async def _has_local_aof(connection: OrderedConnection) -> bool:
    """Whether the server has WAITAOF (7.2+) and appendonly is on, so that fsync can be awaited."""
    server = _info_fields(await connection.execute("INFO", "server"))
    version = tuple(int(part) for part in server.get("redis_version", "0.0").split(".")[:2])
    if version < _WAITAOF_SINCE:
        return False
    persistence = _info_fields(await connection.execute("INFO", "persistence"))
    return persistence.get("aof_enabled") == "1"


def _info_fields(reply: bytes | str | dict[str, Any]) -> dict[str, str]:
    if isinstance(reply, dict):  # redis-py's cluster client parses INFO itself
        return {str(name): str(value) for name, value in reply.items()}
    text = reply.decode() if isinstance(reply, bytes) else reply
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and not name.startswith("#"):
            fields[name.strip()] = value.strip()
    return fields


async def persistence_warnings(connection: Any) -> list[str]:
    """What in Redis's configuration can lose acknowledged jobs, in words for a log.

    ``connection.execute`` sends one command. ``appendonly no`` loses up to the
    last snapshot on a restart; a ``maxmemory-policy`` other than
    ``noeviction`` lets Redis delete job keys under memory pressure. CONFIG is
    often disabled or renamed on managed Redis: then the policy goes unchecked
    and the warning says so.
    """
    warnings: list[str] = []
    persistence = _info_fields(await connection.execute("INFO", "persistence"))
    if persistence.get("aof_enabled") != "1":
        warnings.append(
            "Redis has appendonly off: a restart loses every job written since the last "
            "snapshot (set appendonly yes and appendfsync always, which loses nothing "
            "acknowledged; everysec may lose about the last second)"
        )
    try:
        reply = await connection.execute("CONFIG", "GET", "maxmemory-policy")
    except rexc.ResponseError as error:  # CONFIG disabled, renamed or not permitted
        warnings.append(
            f"could not read Redis's maxmemory-policy ({error}): check it is noeviction"
        )
        return warnings
    if isinstance(reply, dict):  # parsed by redis-py's cluster client
        reply = [item for pair in reply.items() for item in pair]
    values = [v.decode() if isinstance(v, bytes) else str(v) for v in reply]
    policy = values[1] if len(values) > 1 else ""
    if policy and policy != _EVICTION_SAFE:
        warnings.append(
            f"Redis's maxmemory-policy is {policy}: under memory pressure it deletes keys, "
            "jobs among them (set maxmemory-policy noeviction; a full Redis then refuses "
            "writes, which callers see as RESOURCE_EXHAUSTED)"
        )
    return warnings


async def redis_warnings(settings: RedisStoreSettings) -> list[str]:
    """``persistence_warnings`` of the primary the settings name, on a connection of its own.

    For a server's start: it connects once (through Sentinel when configured)
    and closes. Raises ``StoreUnavailable`` when Redis cannot be reached.
    """
    from ._connections import store_connections  # the store's own way to reach the primary

    connections = store_connections(settings)
    try:
        if settings.is_cluster:
            return await _masters_warnings(connections.hot.client)
        return await persistence_warnings(connections.hot)
    except UNAVAILABLE_ERRORS as error:
        raise StoreUnavailable(f"Redis is unreachable: {error}") from error
    finally:
        await connections.aclose()


async def _masters_warnings(client: Any) -> list[str]:
    """``persistence_warnings`` of every master of a cluster, each named."""
    await client.initialize()
    warnings: list[str] = []
    for node in client.get_primaries():
        on_node = _OneNode(client, node)
        warnings += [f"{node.name}: {text}" for text in await persistence_warnings(on_node)]
    return warnings


class _OneNode:
    """``execute`` on one node of a RedisCluster."""

    def __init__(self, client: Any, node: Any) -> None:
        self._client = client
        self._node = node

    async def execute(self, *args: Any) -> Any:
        return await self._client.execute_command(*args, target_nodes=self._node)
