"""Watch and cancel channels on a Redis Cluster: sharded pub/sub, on the master of each slot.

A plain ``PUBLISH`` on a cluster is sent to every node over the cluster bus,
so every publish costs every master, however many there are. Redis 7's
shard channels (``SPUBLISH``/``SSUBSCRIBE``) live in a slot like a key: a
message stays on the master that owns the channel's slot (and its replicas).
The store's channels carry their shard's hash tag (``{<prefix>.<k>}:ev:<id>``,
``{<prefix>.<k>}:cancels``), so a script publishes on the master it runs
on, and a listener subscribes there.

Here one Subscriber (_pubsub.py) per master serves the channels whose slots
that master owns, as the cluster client's slot map says when a channel is
first listened to. When a slot moves (a reshard, a failover), the node that
lost it ends the subscription (an unasked ``sunsubscribe``) or answers
``MOVED``: that master's subscriber fails, the slot map is read again, and
every listener of a channel now owned elsewhere moves to that master's
subscriber, told that messages may have been missed (a watch re-reads its
job; a worker's renew still reports a cancel request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis.asyncio as aioredis
from jobqueue.domain import StoreUnavailable
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ._cluster import ClusterConnection, cluster_nodes
from ._listener import Listener
from ._pubsub import Subscriber
from ._settings import RedisStoreSettings

Address = tuple[str, int]


class ClusterSubscriber:
    """The store's pub/sub on a cluster: a sharded Subscriber per master, channels routed by slot.

    The same face as ``Subscriber`` (``listen``, ``closed``, ``close``,
    ``reconnect``), so watches and cancellations are the same code on every
    topology.
    """

    def __init__(self, settings: RedisStoreSettings, cluster: ClusterConnection) -> None:
        self._settings = settings
        self._client = cluster.client
        self._hubs: dict[Address, Subscriber] = {}
        self._closed = False
        self._rerouting: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    async def listen(
        self,
        channel: str,
        *,
        confirm: bool = True,
        max_messages: int = 10_000,
        signal: asyncio.Event | None = None,
    ) -> Listener:
        """A listener of the shard channel ``channel``, on the master that owns its slot."""
        hub = await self._hub_for(channel)
        return await hub.listen(channel, confirm=confirm, max_messages=max_messages, signal=signal)

    def reconnect(self) -> None:
        for hub in self._hubs.values():
            hub.reconnect()

    async def close(self) -> None:
        self._closed = True
        if self._rerouting is not None:
            self._rerouting.cancel()
        for hub in list(self._hubs.values()):
            await hub.close()
        self._hubs.clear()

    async def _hub_for(self, channel: str) -> Subscriber:
        client = self._client
        if client._initialize:
            await client.initialize()
        address = self._owner(channel)
        hub = self._hubs.get(address)
        if hub is None:
            hub = Subscriber(
                _connections_to(self._settings, address),
                sharded=True,
                on_failure=self._failed,
            )
            self._hubs[address] = hub
        return hub

    def _owner(self, channel: str) -> Address:
        """The master that owns the channel's slot, as the slot map says now."""
        node = self._client.get_node_from_key(channel)
        if node is None:
            raise StoreUnavailable(f"no master serves the slot of {channel} now")
        return (str(node.host), int(node.port))

    def _failed(self, error: BaseException) -> None:
        """A master's subscription broke: perhaps a slot moved, so route every channel again."""
        del error
        if self._closed or (self._rerouting is not None and not self._rerouting.done()):
            return
        self._client._initialize = True
        self._rerouting = asyncio.get_running_loop().create_task(self._reroute())

    async def _reroute(self) -> None:
        """Move each listener whose channel's slot another master owns now to that master."""
        try:
            client = self._client
            await client.initialize()
        except Exception:  # the cluster is still changing: the next failure tries again
            return
        for address, hub in list(self._hubs.items()):
            for channel in hub.channels:
                if self._owner(channel) == address:
                    continue
                target = await self._hub_for(channel)
                for listener in hub.release(channel):
                    target.adopt(listener)


def _connections_to(
    settings: RedisStoreSettings, address: Address
) -> Callable[[], AbstractConnection]:
    """Makes pub/sub connections to one master, with the cluster URL's credentials and TLS."""
    _, options = cluster_nodes(settings.url)
    ssl = options.pop("ssl", False)
    host, port = address
    pool = aioredis.ConnectionPool(
        host=host,
        port=port,
        socket_connect_timeout=settings.connect_timeout_ms / 1000,
        socket_timeout=settings.socket_timeout_ms / 1000,
        health_check_interval=0,
        retry=Retry(NoBackoff(), 0),
        protocol=2,
        **options,
    )
    if ssl:
        pool.connection_class = aioredis.SSLConnection
    return pool.make_connection
