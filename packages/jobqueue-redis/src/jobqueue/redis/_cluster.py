"""The store's connections to a Redis Cluster: redis-py's asyncio RedisCluster.

RedisCluster learns the slot map (CLUSTER SLOTS), sends each command to the
master of its keys' slot, and follows ``MOVED`` (a slot that moved for good,
after a failover or a reshard) and ``ASK`` (a slot being migrated) by itself.
Scripts route by their declared keys (EVALSHA's numkeys), which all carry one
shard's hash tag (_shards.py), so each call reaches the one master that holds
its shard.

Writes are not retried on a connection error (``retry`` of 0 attempts), as on
a single Redis: a write whose reply was lost may have been applied. A failed
node makes redis-py drop its connections and re-read the slot map on the next
call, so the call after a failover reaches the promoted replica.

URL forms: ``redis+cluster://[user:password@]host:port[,host:port...]``
and ``rediss+cluster://`` (TLS); or ``redis://host:port`` with
``RedisStoreSettings(cluster=True)``. Any one reachable node is enough: the
others are discovered.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from jobqueue.domain import StoreUnavailable
from redis import exceptions as rexc
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ._settings import RedisStoreSettings

_NODE_GONE = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.ClusterError,  # ClusterDownError, and "TTL exhausted" after redirections
    rexc.AskError,  # MovedError too
    rexc.SlotNotCoveredError,
    rexc.TryAgainError,
    rexc.ReadOnlyError,
    OSError,
)


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes of a cluster URL (``host:port[,host:port...]``) and its options."""
    parts = urlsplit(url)
    options: dict[str, Any] = {}
    if parts.scheme.startswith("rediss"):
        options["ssl"] = True
    userinfo, _, hosts = parts.netloc.rpartition("@")
    if userinfo:
        user, _, password = userinfo.partition(":")
        if user:
            options["username"] = unquote(user)
        if password:
            options["password"] = unquote(password)
    nodes = []
    for item in hosts.split(","):
        if item:
            host, _, port = item.rpartition(":")
            nodes.append((host.strip("[]") or "127.0.0.1", int(port or 6379)))
    if not nodes:
        raise ValueError("a cluster URL names at least one node: redis+cluster://host:port,...")
    return nodes, options


class _SetUpOnce(RedisCluster):
    """RedisCluster that reads the slot map before its first command.

    Without retries, concurrent first calls on a fresh RedisCluster fail with
    "Connection closed by server" (redis-py 8.1): each sets the client up on
    its own. ``initialize`` is locked and idempotent, so calling it first
    (and again whenever redis-py asks for a new slot map) serializes that.
    A node that failed makes the next call read the slot map again.
    """

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:
            await self.initialize()
        try:
            return await super().execute_command(*args, **kwargs)
        except _NODE_GONE:
            # Without retries redis-py keeps a dead master in its slot map; the
            # next call reads the map again, and reaches the promoted replica
            # once the cluster has one.
            self._initialize = True
            raise


def _client(settings: RedisStoreSettings, *, socket_timeout: float | None) -> RedisCluster:
    nodes, options = cluster_nodes(settings.url)
    return _SetUpOnce(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        socket_timeout=socket_timeout,
        socket_connect_timeout=settings.connect_timeout_ms / 1000,
        max_connections=settings.max_connections,
        retry=Retry(NoBackoff(), 0),
        **options,
    )


class ClusterConnection:
    """Commands and scripts on the cluster, with the replies as the single-Redis path reads them.

    The same ``execute``/``close`` face as ``MultiplexedConnection``, so the
    store's code is the same on both topologies.
    """

    def __init__(self, settings: RedisStoreSettings) -> None:
        self.client = _client(settings, socket_timeout=settings.socket_timeout_ms / 1000)

    async def execute(self, *args: Any) -> Any:
        reply = await self.client.execute_command(*args)
        if isinstance(reply, dict):  # redis-py's HGETALL callback; the store reads flat pairs
            return [item for pair in reply.items() for item in pair]
        return reply

    async def close(self) -> None:
        await self.client.aclose()


def blocking_client(settings: RedisStoreSettings) -> RedisCluster:
    """A cluster client without a socket timeout, for BLPOPs (all their keys share a slot)."""
    return _client(settings, socket_timeout=None)


class ClusterDurableWrites:
    """Durable writes on a cluster: the write and its ``WAIT`` back to back on one connection.

    ``WAIT`` covers the writes sent before it *on its connection*, and
    RedisCluster takes any free connection per command, so here the write's
    master is looked up by the command's first key (the slot map RedisCluster
    keeps), one of that master's connections is taken, and the command and
    ``WAIT`` are sent together on it (as _durability.py does on one Redis).
    A ``MOVED`` or ``ASK`` reply means the write did not run there: the slot map
    is read again and the call fails as unavailable, for the caller to retry.
    """

    def __init__(self, hot: ClusterConnection, *, min_replicas: int, timeout_ms: int) -> None:
        self._client = hot.client
        self._min_replicas = min_replicas
        self._timeout_ms = timeout_ms

    async def execute(self, *command: Any) -> Any:
        """``command`` is EVALSHA or EVAL with at least one key; its reply once replicated."""
        client = self._client
        if client._initialize:
            await client.initialize()
        node = client.get_node_from_key(command[3])
        if node is None:
            raise StoreUnavailable("no master serves this shard's slot now")
        connection = node.acquire_connection()
        replies: list[Any] = []
        try:
            await connection.send_packed_command(
                connection.pack_commands([command, ("WAIT", self._min_replicas, self._timeout_ms)])
            )
            for _ in range(2):
                try:
                    replies.append(await connection.read_response())
                except rexc.ResponseError as error:
                    replies.append(error)
        except BaseException:
            await connection.disconnect()
            client._initialize = True  # perhaps a failover: read the slot map again
            raise
        finally:
            node.release(connection)
        reply = replies[0]
        if isinstance(reply, rexc.AskError):  # MovedError is one too
            client._initialize = True
            raise StoreUnavailable(f"the shard's slot moved ({reply}): retry") from reply
        if isinstance(reply, rexc.RedisError):
            raise reply
        if isinstance(replies[1], rexc.RedisError):
            raise replies[1]
        acknowledged = int(replies[1])
        if acknowledged < self._min_replicas:
            raise StoreUnavailable(
                f"only {acknowledged} of {self._min_replicas} replicas acknowledged the write "
                f"within {self._timeout_ms} ms: it applied on the master and may not survive "
                "a failover (retrying is safe: enqueues with an idempotency key are not repeated)"
            )
        return reply

    async def close(self) -> None:
        """Its connections are the cluster client's, closed with it."""
