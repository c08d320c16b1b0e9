"""Worker presence on Redis (see ``jobqueue.domain.PresenceStore``), in ``presence.lua``.

Two keys under the prefix's one fixed hash tag (``{prefix}:``, the one-shard
namespace, whatever the shard layout): ``wk:exp``, worker ids by the Redis
time their heartbeat expires, and ``wk:info``, each worker's JSON with the
Redis time it was last seen. One fixed tag means one script call lists every
worker, even on a cluster of many shards; presence is small (a few hundred
bytes per live worker) and a heartbeat every few seconds per worker, so one
slot carries it easily. Each call prunes a bounded number of expired entries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import resources
from typing import Any

from jobqueue.domain import MAX_LISTED_WORKERS, QueueStats, WorkerInfo, live_workers_by_type
from redis import exceptions as rexc

from ._core import Arg, StoreCore
from ._errors import translated

_PRUNE_BOUND = 1_000
"""Most expired workers one call forgets; later calls take the rest."""
# The shebang makes Redis Cluster refuse any key outside the declared keys' slot.
_SCRIPT = "#!lua\n" + resources.files(__package__).joinpath("lua/presence.lua").read_text()
_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()


class Presence:
    """Heartbeats and the live-worker list of one store."""

    def __init__(self, core: StoreCore) -> None:
        self._core = core
        self._keys = (core.ns + "wk:exp", core.ns + "wk:info")

    async def heartbeat(self, worker: WorkerInfo, ttl_ms: int) -> WorkerInfo:
        body = json.dumps(_to_json(worker), separators=(",", ":"))
        with translated():
            now = await self._run("beat", _PRUNE_BOUND, worker.id, ttl_ms, body)
        return dataclasses.replace(worker, last_seen_at_ms=int(now))

    async def deregister(self, worker_id: str) -> bool:
        with translated():
            return int(await self._run("drop", _PRUNE_BOUND, worker_id)) == 1

    async def list_workers(self) -> list[WorkerInfo]:
        core = self._core
        flat = await core.read(lambda: self._run("list", MAX_LISTED_WORKERS))
        workers = [_from_json(flat[i].decode(), flat[i + 1]) for i in range(1, len(flat), 2)]
        return sorted(workers, key=lambda worker: worker.id)

    async def worker_counts(self) -> dict[str, int]:
        return live_workers_by_type(await self.list_workers())

    async def _run(self, *args: Arg) -> Any:
        """presence.lua by its SHA, sending the source only when Redis lacks it."""
        run = self._core.hot.execute
        try:
            return await run("EVALSHA", _SHA, 2, *self._keys, *args)
        except rexc.NoScriptError:
            return await run("EVAL", _SCRIPT, 2, *self._keys, *args)


def with_workers(stats: QueueStats, workers: list[WorkerInfo]) -> QueueStats:
    """``stats`` with each type's count of live workers that handle it."""
    counts = live_workers_by_type(workers)
    return dataclasses.replace(
        stats,
        types=[dataclasses.replace(row, workers=counts.get(row.type, 0)) for row in stats.types],
    )


def _to_json(worker: WorkerInfo) -> dict[str, object]:
    return {
        "host": worker.host,
        "pid": worker.pid,
        "sdk": worker.sdk,
        "types": list(worker.types),
        "concurrency": worker.concurrency,
        "busy": worker.busy,
        "started_at": worker.started_at_ms,
    }


def _from_json(worker_id: str, stored: bytes) -> WorkerInfo:
    last_seen, _, body = stored.partition(b"|")
    fields = json.loads(body)
    return WorkerInfo(
        id=worker_id,
        host=str(fields.get("host", "")),
        pid=int(fields.get("pid", 0)),
        sdk=str(fields.get("sdk", "")),
        types=tuple(str(name) for name in fields.get("types", ())),
        concurrency=int(fields.get("concurrency", 0)),
        busy=int(fields.get("busy", 0)),
        started_at_ms=int(fields.get("started_at", 0)),
        last_seen_at_ms=int(last_seen),
    )
