"""Every connection a store holds, made from its settings for the topology they name.

- ``hot``: scripts and single-key reads, nearly every call (``_multiplex.py``,
  or redis-py's pool with ``connection="redis-py"``, see ``_pooled.py``);
- ``blocking``: connections of their own for BLPOPs (``_waits.py``, ``_blocking.py``;
  a redis-py pool without a socket timeout with ``connection="redis-py"``);
- ``subscriber``: the one pub/sub connection (``_pubsub.py``), or one per
  master with sharded channels on a cluster (``_cluster_pubsub.py``);
- ``durable``: with ``min_replicas``, the connections that carry acknowledged
  writes and their ``WAIT`` (``_durability.py``).

On a single Redis each connects to the URL's address; through Sentinel each
asks Sentinel for the primary whenever it (re)connects (``_topology.py``), so
after a failover all of them reach the new primary. A Redis Cluster's
connections come from ``_cluster.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ._blocking import BlockingConnections
from ._durability import DurableWrites, OrderedConnection
from ._multiplex import MultiplexedConnection
from ._pooled import PooledConnection
from ._pubsub import Subscriber
from ._settings import RedisStoreSettings
from ._topology import Topology


@dataclass(slots=True)
class StoreConnections:
    hot: Any
    """``execute(*args)`` and ``close()``: an ``OrderedConnection`` except on a cluster."""
    blocking: Any
    """``blpop(keys, timeout)`` and ``aclose()``: ``BlockingConnections``, or a redis-py
    client (``Redis``, or ``RedisCluster``) for blocking commands."""
    subscriber: Any
    """``listen``, ``closed``, ``close`` and ``reconnect``: a ``Subscriber`` or a
    ``ClusterSubscriber``."""
    durable: Any
    """``execute(*command)`` and ``close()``: a ``DurableWrites``, or a cluster's own."""
    topology: Topology | None

    async def aclose(self) -> None:
        """Close everything, each step even if an earlier one failed (a pool of a dead
        node may raise), the sentinels' clients last."""
        steps = [self.hot.close, self.blocking.aclose]
        if self.durable is not None:
            steps.insert(0, self.durable.close)
        if self.topology is not None:
            steps.append(self.topology.aclose)
        failures = []
        for step in steps:
            try:
                await step()
            except Exception as error:
                failures.append(error)
        if failures:
            raise failures[0]


_BLOCK_LIMIT_S = 30.0
"""More than any blocking wait lasts with its grace (_waits.py: 5 s and 2 s)."""


def store_connections(settings: RedisStoreSettings) -> StoreConnections:
    """The connections of one store; none connects before its first use."""
    if settings.is_cluster:
        from ._cluster import ClusterConnection, ClusterDurableWrites, blocking_client
        from ._cluster_pubsub import ClusterSubscriber

        cluster = ClusterConnection(settings)
        return StoreConnections(
            hot=cluster,
            blocking=blocking_client(settings),
            subscriber=ClusterSubscriber(settings, cluster),
            # WAIT goes to each write's own master, on the write's connection (_cluster.py).
            durable=ClusterDurableWrites(
                cluster,
                min_replicas=settings.min_replicas,
                timeout_ms=settings.replica_timeout_ms,
            )
            if settings.min_replicas > 0
            else None,
            topology=None,
        )
    topology = Topology(
        settings.url,
        connect_timeout_s=settings.connect_timeout_ms / 1000,
        socket_timeout_s=settings.socket_timeout_ms / 1000,
    )

    def hot() -> OrderedConnection:
        if settings.connection == "redis-py":
            return PooledConnection(
                topology.client(
                    socket_timeout=settings.socket_timeout_ms / 1000,
                    socket_connect_timeout=settings.connect_timeout_ms / 1000,
                    max_connections=settings.max_connections,
                    retry=Retry(NoBackoff(), 0),
                    protocol=2,  # flat replies, as the multiplexed connection reads them
                )
            )
        return MultiplexedConnection(
            topology.data_url,
            connect_timeout_s=settings.connect_timeout_ms / 1000,
            timeout_s=settings.socket_timeout_ms / 1000,
            resolve=topology.resolver,
        )

    shared = hot()
    durable = None
    if settings.min_replicas > 0:
        durable = DurableWrites(
            hot,
            min_replicas=settings.min_replicas,
            timeout_ms=settings.replica_timeout_ms,
            connections=settings.durable_connections,
            still_primary=topology.still_primary if topology.is_sentinel else None,
            on_failover=shared.retire,
        )
    # Blocking waits hold a connection for their whole timeout, longer than
    # the command socket timeout allows, so they get connections of their own.
    blocking: aioredis.Redis | BlockingConnections
    if settings.connection == "redis-py":
        blocking = topology.client(
            socket_timeout=None,
            socket_connect_timeout=settings.connect_timeout_ms / 1000,
            max_connections=settings.max_connections,
            health_check_interval=5,
            retry=Retry(NoBackoff(), 0),
        )
    else:
        blocking = BlockingConnections(
            lambda: MultiplexedConnection(
                topology.data_url,
                connect_timeout_s=settings.connect_timeout_ms / 1000,
                # The waits' own deadline (a block of at most 5 s, plus a grace:
                # _waits.py) comes first; this one only ends a connection that
                # stopped answering after its caller left.
                timeout_s=settings.socket_timeout_ms / 1000 + _BLOCK_LIMIT_S,
                resolve=topology.resolver,
            )
        )
    # The pub/sub connection answers its own PINGs, so no health checks.
    subscriber_pool = topology.pool(
        socket_connect_timeout=settings.connect_timeout_ms / 1000,
        socket_timeout=settings.socket_timeout_ms / 1000,
        health_check_interval=0,
        retry=Retry(NoBackoff(), 0),
        protocol=2,  # messages as plain replies, whatever redis-py's default
    )
    if topology.is_sentinel:
        # A new primary announced: no connection should keep writing to the old one.
        topology.on_switch(shared.retire)
        if durable is not None:
            topology.on_switch(durable.retire_all)
        if isinstance(blocking, BlockingConnections):
            topology.on_switch(blocking.retire_idle)
        else:
            topology.on_switch(lambda: _drop_idle(blocking))
    return StoreConnections(
        hot=shared,
        blocking=blocking,
        subscriber=Subscriber(subscriber_pool.make_connection),
        durable=durable,
        topology=topology,
    )


def _drop_idle(client: aioredis.Redis) -> None:
    """Close a pool's idle connections in the background (their next use reconnects)."""
    task = asyncio.get_running_loop().create_task(
        client.connection_pool.disconnect(inuse_connections=False)
    )
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()
