"""Claim-time gates on Redis: paused types, one set per shard (``{jq}:pz``).

A type's flag lives in its own shard, beside its queue, so ``claim.lua``
reads it in the same atomic step that leases: once ``pause_type`` returned,
no claim on any server or worker leases a job of the type.
"""

from __future__ import annotations

import dataclasses

from jobqueue.domain import QueueStats, TypeLimits, TypeStats

from ._admin import _MAX_STATS_TYPES as MAX_STATS_TYPES
from ._core import StoreCore
from ._errors import translated
from ._fanout import gather_all


class Gates:
    """Pause, resume and list paused types of one store."""

    def __init__(self, core: StoreCore) -> None:
        self._core = core

    async def set_paused(self, job_type: str, paused: bool) -> bool:
        core = self._core
        shard = core.shard_of_type(job_type)
        args = [core.namespaces[shard], job_type, "1" if paused else "0"]
        with translated():
            changed = await core.script("gate", args, keys=core.keys[shard]["gate"])
        return int(changed) == 1

    async def set_limits(self, job_type: str, limits: TypeLimits) -> None:
        core = self._core
        shard = core.shard_of_type(job_type)
        rate = "" if limits.rate is None else limits.rate
        args = [
            core.namespaces[shard],
            job_type,
            "l",
            "" if limits.concurrency is None else limits.concurrency,
            rate,
            limits.rate_interval_ms,
            "" if limits.key_concurrency is None else limits.key_concurrency,
            "" if limits.key_rate is None else limits.key_rate,
            limits.key_rate_interval_ms,
        ]
        with translated():
            await core.script("gate", args, keys=core.keys[shard]["gate"])

    async def limits(self, job_type: str) -> TypeLimits:
        core = self._core
        key = core.namespaces[core.shard_of_type(job_type)] + "lm:" + job_type
        c, rn, ri, kc, kn, ki = await core.read(
            lambda: core.hot.execute("HMGET", key, "c", "rn", "ri", "kc", "kn", "ki")
        )
        return TypeLimits(
            concurrency=None if c is None else int(c),
            rate=None if rn is None else int(rn),
            rate_interval_ms=1_000 if ri is None else int(ri),
            key_concurrency=None if kc is None else int(kc),
            key_rate=None if kn is None else int(kn),
            key_rate_interval_ms=1_000 if ki is None else int(ki),
        )

    async def paused_types(self) -> list[str]:
        core = self._core

        async def members(ns: str) -> list[bytes]:
            reply: list[bytes] = await core.read(lambda: core.hot.execute("SMEMBERS", ns + "pz"))
            return reply

        replies = await gather_all(members(ns) for ns in core.namespaces)
        return sorted(name.decode() for reply in replies for name in reply)


def with_paused(stats: QueueStats, paused: list[str]) -> QueueStats:
    """``stats`` with each paused type flagged, and listed even when it holds no jobs."""
    if not paused:
        return stats
    flagged = set(paused)
    rows = {row.type: dataclasses.replace(row, paused=row.type in flagged) for row in stats.types}
    for name in flagged - rows.keys():
        rows[name] = TypeStats(type=name, paused=True)
    names = sorted(rows)
    return QueueStats(
        types=[rows[name] for name in names[:MAX_STATS_TYPES]],
        omitted_types=stats.omitted_types + max(len(names) - MAX_STATS_TYPES, 0),
    )
