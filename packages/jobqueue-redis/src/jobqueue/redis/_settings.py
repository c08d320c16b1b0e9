"""Connection and layout settings of the Redis store."""

from __future__ import annotations

import re
import warnings
from dataclasses import InitVar, dataclass
from typing import Literal
from urllib.parse import urlsplit

_URL_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
)
"""What the store connects to: redis-py's URLs, and Sentinel's and Cluster's forms of ours."""
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisStoreSettings:
    """Where the jobs live and how long finished ones are kept.

    ``retention_ms`` (how long finished jobs stay readable) and
    ``max_finished`` (the most finished jobs kept per type and status) live in
    Redis, shared by every server and worker of the prefix, so whoever
    finishes a job applies the same ones. A store whose settings give them
    writes them there before its first call; leave them None (the default) to
    follow what Redis holds (24 hours and 100,000 when nothing was ever set).
    Set them on the servers, not on every worker.

    Every key is ``{<key_prefix>}:...`` (one shard), or ``{<key_prefix>.<k>}:...``
    for shard k of several: the braces are a Redis Cluster hash tag, so one
    shard's keys share a slot and its Lua scripts stay atomic on a cluster.
    Different prefixes isolate tenants (and tests) in one Redis, and spread
    over a cluster's masters. The URL carries the password and TLS
    (``rediss://``) as redis-py understands them; ``redis+sentinel://host:26379,
    host:26380/<service>/<db>`` finds the primary through Sentinel (_topology.py).
    """

    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "jq"
    retention_ms: int | None = None
    max_finished: int | None = None
    socket_timeout_ms: int = 5_000
    """How long one command may wait for its reply before the connection counts as broken."""
    connect_timeout_ms: int = 2_000
    """How long connecting (and the handshake) may take."""
    max_connections: int = 64
    shards: int | None = None
    """Virtual shards (see _shards.py): 1 keeps every key under ``{<key_prefix>}``. None
    (the default) adopts the number recorded in Redis by the prefix's first writer, 1 when
    nothing is; a number that disagrees with the record fails (ShardLayoutMismatch,
    _layout.py), so no process of a prefix writes where the others do not look."""
    cluster: bool = False
    """Talk to a Redis Cluster through redis-py's RedisCluster (it follows MOVED and
    ASK); implied by a ``redis+cluster://host:port[,host:port...]`` URL. Any one
    reachable node is enough: the others are discovered (_cluster.py)."""

    min_replicas: int = 0
    """Durability on demand: add, settle and cancel are acknowledged only once this many
    replicas hold them (``WAIT``; see _durability.py). 0: acknowledged by the primary alone."""
    replica_timeout_ms: int = 1_000
    """How long a durable write waits for its replicas before failing as unavailable."""
    durable_connections: int = 4
    """Connections that carry durable writes and their WAITs, apart from every other call."""
    connection: Literal["multiplexed", "redis-py"] = "multiplexed"
    """The hot path: one pipelined connection (_multiplex.py), or redis-py's pooled client
    (_pooled.py); measured side by side in docs/benchmarks.md."""

    socket_timeout_s: InitVar[float | None] = None
    """Deprecated: ``socket_timeout_ms`` (every duration of the store is in integer ms)."""
    connect_timeout_s: InitVar[float | None] = None
    """Deprecated: ``connect_timeout_ms``."""

    def __post_init__(
        self, socket_timeout_s: float | None, connect_timeout_s: float | None
    ) -> None:
        for old, new, seconds in (
            ("socket_timeout_s", "socket_timeout_ms", socket_timeout_s),
            ("connect_timeout_s", "connect_timeout_ms", connect_timeout_s),
        ):
            if seconds is not None:
                warnings.warn(
                    f"RedisStoreSettings({old}=...) is deprecated: use {new} (milliseconds)",
                    DeprecationWarning,
                    stacklevel=3,
                )
                object.__setattr__(self, new, round(seconds * 1000))
        if self.socket_timeout_ms <= 0 or self.connect_timeout_ms <= 0:
            raise ValueError("socket_timeout_ms and connect_timeout_ms must be positive")
        if self.min_replicas < 0:
            raise ValueError("min_replicas must not be negative")
        if self.replica_timeout_ms <= 0:
            raise ValueError("replica_timeout_ms must be positive")
        if self.durable_connections <= 0:
            raise ValueError("durable_connections must be positive")
        if self.connection not in ("multiplexed", "redis-py"):
            raise ValueError("connection is 'multiplexed' or 'redis-py'")
        if not _PREFIX_RE.fullmatch(self.key_prefix):
            raise ValueError("key_prefix must be 1 to 64 characters from [A-Za-z0-9_.:-]")
        # As each parser reads it: redis-py from the first character and in lower case
        # (it refuses REDIS:// or a leading blank in its own words, once the server has
        # started), as the cluster form is recognised; Sentinel's through urlsplit, in
        # any case.
        url = self.url
        scheme = url.partition("://")[0] if "://" in url else ""
        if scheme.lower() in ("redis+sentinel", "rediss+sentinel"):
            scheme = scheme.lower()
        if scheme in ("redis", "rediss") and not self.cluster and "," not in url:
            try:
                urlsplit(url).port  # noqa: B018 (read for its check: redis-py reads it later)
            except ValueError as error:
                raise ValueError(f"url: {error}") from None
        if scheme not in _URL_SCHEMES:
            raise ValueError(
                "url must start with one of "
                + ", ".join(f"{name}://" for name in _URL_SCHEMES)
                + (f", not {scheme}://" if scheme else "")
            )
        if self.retention_ms is not None and self.retention_ms <= 0:
            raise ValueError("retention_ms must be positive")
        if self.max_finished is not None and self.max_finished <= 0:
            raise ValueError("max_finished must be positive")
        if self.shards is not None and not 1 <= self.shards <= 1 << 16:
            raise ValueError("shards must be between 1 and 65536")

    @property
    def is_cluster(self) -> bool:
        """Whether the store talks to a Redis Cluster."""
        return self.cluster or self.url.startswith(("redis+cluster://", "rediss+cluster://"))

    @property
    def namespace(self) -> str:
        return "{" + self.key_prefix + "}:"
