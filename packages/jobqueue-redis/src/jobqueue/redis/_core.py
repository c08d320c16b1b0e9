"""What every part of the store shares: its connections, its shards' names, and how it runs scripts.

The store's operations live in modules of their own (_enqueue.py,
_leasing.py, _admin.py, _watching.py), each over one ``StoreCore``: the
connections (_connections.py), the shard layout (_shards.py), and the two
ways a call reaches Redis, a script by its SHA (``script``) and an
idempotent read retried on a fresh connection (``read``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

from jobqueue.domain import Job, StoreUnavailable
from redis import exceptions as rexc

from ._codec import job_from_hash
from ._connections import store_connections
from ._durability import DURABLE_SCRIPTS
from ._errors import translated
from ._fanout import gather_all
from ._layout import recorded_layout
from ._prelude import prelude_for
from ._settings import RedisStoreSettings
from ._shards import namespace, script_keys, shard_of_id, shard_of_type

T = TypeVar("T")
Arg = bytes | str | int | float
"""One argument of a Redis command, as redis-py encodes it."""
_READ_ATTEMPTS = 3


def _load_scripts(publish: str, cluster: bool) -> dict[str, str]:
    folder = resources.files(__package__).joinpath("lua")
    common = folder.joinpath("_common.lua").read_text()
    if not cluster:
        # Probes guard against slots migrating mid-script: a cluster's only.
        probing = "local PROBE = true\n"
        assert common.count(probing) == 1, "_common.lua declares PROBE once"
        common = common.replace(probing, "local PROBE = false\n")
    names = (
        "add",
        "add_one",
        "claim",
        "settle",
        "renew",
        "cancel",
        "requeue",
        "stats",
        "list",
        "watchers",
        "gate",
        "progress",
    )
    # The shebang makes Redis Cluster refuse any key outside the declared keys' slot.
    head = f"#!lua\nlocal PUBLISH = '{publish}'\n"
    scripts = {}
    for name in names:
        body = folder.joinpath(f"{name}.lua").read_text()
        scripts[name] = head + prelude_for(common, body) + body
    # The operators' writes (_actions.py) share helpers of their own.
    actions = folder.joinpath("_actions.lua").read_text()
    for name in ("retry", "delete", "bulk"):
        body = actions + folder.joinpath(f"{name}.lua").read_text()
        scripts[name] = head + prelude_for(common, body) + body
    return scripts


# Watch and cancel events: PUBLISH on one Redis (any Redis version), SPUBLISH on
# a cluster, where a PUBLISH would reach every master (_cluster_pubsub.py).
_SCRIPTS = {
    cluster: _load_scripts("SPUBLISH" if cluster else "PUBLISH", cluster)
    for cluster in (False, True)
}
_SHAS = {
    cluster: {name: hashlib.sha1(src.encode()).hexdigest() for name, src in scripts.items()}
    for cluster, scripts in _SCRIPTS.items()
}


class StoreCore:
    """One store's connections and shard layout, shared by its operations."""

    def __init__(self, settings: RedisStoreSettings) -> None:
        self.settings = settings
        self.ns = settings.namespace
        """The namespace of the one-shard layout: ``{<prefix>}:``."""
        self._types_key = self.ns + "tz"
        # Virtual shards (_shards.py): shard k's namespace and its scripts' KEYS.
        # Without an explicit ``shards`` the layout is the one recorded in
        # Redis, learnt by ``resolve_layout`` before the first call (_layout.py).
        self._layout_known = False
        self._set_layout(settings.shards or 1)
        # Retention set here is written to Redis before the first script runs,
        # where every server and worker of the prefix reads it (see _common.lua).
        self._config_pending = (
            settings.retention_ms is not None or settings.max_finished is not None
        )
        # Single Redis, Sentinel or Cluster, each connection finds the primary
        # when it connects (_connections.py). Scripts and single-key reads,
        # nearly every call a worker or producer makes, share one pipelined
        # connection (_multiplex.py); durable writes have their own (_durability.py).
        self.connections = store_connections(settings)
        self._scripts = _SCRIPTS[settings.is_cluster]
        self._shas = _SHAS[settings.is_cluster]
        self.hot = self.connections.hot
        self._durable = self.connections.durable

    def _set_layout(self, shards: int) -> None:
        self.shards = shards
        self.namespaces = [namespace(self.settings.key_prefix, k, shards) for k in range(shards)]
        self.keys = [script_keys(ns) for ns in self.namespaces]

    async def resolve_layout(self, *, writing: bool = False) -> None:
        """Learn the shard layout of the data before the first call that depends on it.

        Cheap once known (a flag). Raises ShardLayoutMismatch when an explicit
        ``shards`` disagrees with the layout Redis records (_layout.py).
        """
        if self._layout_known:
            return
        shards, final = await recorded_layout(self, writing=writing)
        self._set_layout(shards)
        self._layout_known = final

    def fix_layout(self, shards: int) -> None:
        """Use ``shards`` whatever Redis records: the migration's view of the old layout."""
        self._set_layout(shards)
        self._layout_known = True

    def cancel_channel(self, ns: str) -> str:
        """Where a cancel in namespace ``ns`` is published: its shard's channel on a cluster."""
        return ns + "cancels" if self.settings.is_cluster else self.ns + "cancels"

    def cancel_channels(self) -> list[str]:
        """Every channel a cancel of this store may be published on."""
        if not self.settings.is_cluster:
            return [self.ns + "cancels"]
        return list(
            dict.fromkeys([*(ns + "cancels" for ns in self.namespaces), self.ns + "cancels"])
        )

    def shard_of_type(self, job_type: str) -> int:
        return shard_of_type(job_type, self.shards)

    def shard_of_id(self, job_id: str) -> int:
        return shard_of_id(job_id, self.shards)

    async def script(
        self, name: str, args: Sequence[Arg], keys: Sequence[str] | None = None
    ) -> Any:
        """Run a script by its SHA, sending its source only when Redis lacks it.

        A NOSCRIPT reply means nothing ran, so sending the source (EVAL, which
        also caches it) is safe even for a write. With ``min_replicas``, the
        scripts that acknowledge a write (add, settle, cancel) run on the
        durable connections and wait for the replicas (_durability.py).
        """
        keys = (self._types_key,) if keys is None else keys
        if self._config_pending:
            await self._publish_config()
        run = self.hot.execute
        if self._durable is not None and name in DURABLE_SCRIPTS:
            run = self._durable.execute
        try:
            return await run("EVALSHA", self._shas[name], len(keys), *keys, *args)
        except rexc.NoScriptError:
            pass
        return await run("EVAL", self._scripts[name], len(keys), *keys, *args)

    def script_command(
        self, name: str, args: Sequence[Arg], keys: Sequence[str]
    ) -> tuple[Any, ...]:
        """The ``EVALSHA`` of a script, to send on a connection of the caller's choosing.

        Only for a script whose caller handles NOSCRIPT by running it through
        ``script`` (nothing ran), and never one of the durable scripts.
        """
        if name in DURABLE_SCRIPTS:
            raise ValueError(f"{name} acknowledges writes: run it through script()")
        return ("EVALSHA", self._shas[name], len(keys), *keys, *args)

    def call(self, name: str, args: list[Arg], keys: Sequence[str]) -> Callable[[], Awaitable[Any]]:
        """A script call to hand to ``read`` (which may make it more than once)."""
        return lambda: self.script(name, args, keys=keys)

    async def read(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent command, retrying on a fresh connection if one broke."""
        for attempt in range(_READ_ATTEMPTS):
            try:
                with translated():
                    return await call()
            except StoreUnavailable:
                if attempt == _READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _publish_config(self) -> None:
        settings = self.settings
        fields: list[Arg] = []
        if settings.retention_ms is not None:
            fields += ["retention_ms", settings.retention_ms]
        if settings.max_finished is not None:
            fields += ["max_finished", settings.max_finished]
        with translated():
            # Every shard reads its own copy (scripts touch one shard's keys).
            await gather_all(
                self.hot.execute("HSET", ns + "cfg", *fields) for ns in self.namespaces
            )
        self._config_pending = False


def visible(job_id: str, fields: dict[bytes, bytes]) -> Job | None:
    """The job in a hash, unless the hash is gone (Redis expires it at its retention)."""
    if not fields or b"t" not in fields:
        return None
    return job_from_hash(job_id, fields)
