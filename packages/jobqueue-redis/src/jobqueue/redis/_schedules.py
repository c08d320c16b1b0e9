"""The ScheduleStore port on Redis, beside the RedisJobStore whose jobs it enqueues.

A schedule lives in its job type's shard (_shards.py): its id names that
shard as a job id does, and ``schedule_fire.lua`` writes the tick's job and
the schedule's new state in one script, on one slot. Keys, under the shard's
namespace: ``sc:<id>`` the schedule (hash), ``sa`` every schedule of the
shard (sorted set, by id), ``sx`` the unpaused ones by their next tick
(sorted set; 0 while unplanned), ``sk:<type>/<key>`` a create's idempotency
key (string: the schedule's id, for ``SCHEDULE_KEY_WINDOW_MS``). Every script
reads Redis's TIME.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from jobqueue.domain import (
    SCHEDULE_KEY_WINDOW_MS,
    Advance,
    InvalidJob,
    Job,
    JobStatus,
    JobTemplate,
    OverlapPolicy,
    Schedule,
    ScheduleNotFound,
)
from redis import exceptions as rexc

from ._codec import stored_int
from ._core import Arg, StoreCore
from ._errors import translated
from ._fanout import gather_all
from ._prelude import prelude_for
from ._shards import with_shard
from ._store import RedisJobStore

_OVERLAP = {
    OverlapPolicy.SKIP: "skip",
    OverlapPolicy.BUFFER_ONE: "one",
    OverlapPolicy.ALLOW_ALL: "all",
}
_OVERLAP_BACK = {code: policy for policy, code in _OVERLAP.items()}


def _load() -> dict[str, str]:
    folder = resources.files(__package__).joinpath("lua")
    common = folder.joinpath("_common.lua").read_text()
    names = ("create", "pause", "delete", "due", "list", "fire")
    # The shebang makes Redis Cluster refuse any key outside the declared keys' slot.
    bodies = {name: folder.joinpath(f"schedule_{name}.lua").read_text() for name in names}
    return {name: "#!lua\n" + prelude_for(common, body) + body for name, body in bodies.items()}


_SCRIPTS = _load()
_SHAS = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in _SCRIPTS.items()}


class RedisScheduleStore:
    """Schedules in Redis, fired by any number of servers without a leader."""

    def __init__(self, jobs: RedisJobStore) -> None:
        # One store, one set of connections: the schedules share the job store's.
        self._core: StoreCore = jobs._core

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        run = self._core.hot.execute
        with translated():
            try:
                return await run("EVALSHA", _SHAS[name], len(keys), *keys, *args)
            except rexc.NoScriptError:
                pass  # nothing ran: sending the source is safe, even for a write
            return await run("EVAL", _SCRIPTS[name], len(keys), *keys, *args)

    async def create(self, schedule: Schedule, *, idempotency_key: str | None = None) -> Schedule:
        core = self._core
        shard = core.shard_of_type(schedule.template.type)
        try:
            schedule_id = with_shard(schedule.id, shard, core.shards)
        except ValueError as error:
            raise InvalidJob("id", str(error)) from None
        ns = core.namespaces[shard]
        template = schedule.template
        fields: list[Arg] = [
            "na", schedule.name,
            "tzn", schedule.time_zone,
            "ty", template.type,
            "pl", template.payload,
            "hd", json.dumps(dict(template.headers), sort_keys=True),
            "ma", "" if template.max_attempts is None else template.max_attempts,
            "pr", template.priority,
            "ov", _OVERLAP[schedule.overlap],
            "cw", schedule.catchup_window_ms,
        ]  # fmt: skip
        if template.limit_key is not None:
            fields += ["lk", template.limit_key]
        if schedule.cron is not None:
            fields += ["cr", schedule.cron]
        else:
            assert schedule.interval_ms is not None
            fields += ["iv", schedule.interval_ms]
        keys = [ns + "sa", ns + "sx", ns + "sc:" + schedule_id]
        if idempotency_key is not None:
            # Per job type, as a job's key: the type names the shard it lives in.
            keys.append(f"{ns}sk:{template.type}/{idempotency_key}")
        args: list[Arg] = [
            ns, schedule_id, "1" if schedule.paused else "0",
            idempotency_key or "", SCHEDULE_KEY_WINDOW_MS, *fields,
        ]  # fmt: skip
        stored_id, _ = await self._run("create", keys, args)
        stored = await self.get(stored_id.decode())
        if stored is None:  # deleted between the script and the read: as after it
            raise ScheduleNotFound(stored_id.decode())
        return stored

    async def get(self, schedule_id: str) -> Schedule | None:
        ns = self._ns_of(schedule_id)
        fields = await self._core.read(
            lambda: self._core.hot.execute("HGETALL", ns + "sc:" + schedule_id)
        )
        return _decode(schedule_id, _pairs(fields)) if fields else None

    async def list_schedules(self, *, limit: int = 1_000) -> list[Schedule]:
        core = self._core

        async def one(ns: str) -> list[Schedule]:
            reply = await core.read(lambda: self._run("list", (ns + "sa",), [ns, limit]))
            return _decode_many(reply)

        found = await gather_all(one(ns) for ns in core.namespaces)
        return sorted((s for part in found for s in part), key=lambda s: s.id)[:limit]

    async def set_paused(self, schedule_id: str, paused: bool) -> Schedule:
        ns = self._ns_of(schedule_id)
        keys = (ns + "sx", ns + "sc:" + schedule_id)
        reply = await self._run("pause", keys, [schedule_id, "1" if paused else "0"])
        if not reply:
            raise ScheduleNotFound(schedule_id)
        return _decode(schedule_id, _pairs(reply))

    async def delete(self, schedule_id: str) -> bool:
        ns = self._ns_of(schedule_id)
        keys = (ns + "sa", ns + "sx", ns + "sc:" + schedule_id)
        return bool(await self._run("delete", keys, [schedule_id, ns]))

    async def due(self, *, limit: int) -> tuple[int, list[Schedule]]:
        core = self._core

        async def one(ns: str) -> tuple[int, list[Schedule]]:
            reply = await core.read(lambda: self._run("due", (ns + "sx",), [ns, limit]))
            return int(reply[0]), _decode_many(reply[1:])

        parts = await gather_all(one(ns) for ns in core.namespaces)
        # Shards' clocks differ by little; the earliest is the safe "now" for all.
        now = min(part[0] for part in parts)
        return now, [s for part in parts for s in part[1]][:limit]

    async def advance(
        self,
        schedule_id: str,
        *,
        version: int,
        tick_ms: int | None,
        last_tick_ms: int | None,
        next_tick_ms: int | None,
        missed: int,
        job: Job | None,
    ) -> Advance:
        core = self._core
        shard = core.shard_of_id(schedule_id)
        ns = core.namespaces[shard]
        job_id = key = ""
        if job is not None:
            job_id = with_shard(job.id, shard, core.shards)
            key = job.idempotency_key or ""
        keys = (ns + "sx", ns + "tz", ns + "ts:1", ns + "sc:" + schedule_id, ns + "ct")
        args: list[Arg] = [
            ns, schedule_id, version,
            "" if tick_ms is None else tick_ms,
            "" if last_tick_ms is None else last_tick_ms,
            "" if next_tick_ms is None else next_tick_ms,
            missed, job_id, key,
        ]  # fmt: skip
        outcome, now, fired_id = await self._run("fire", keys, args)
        outcome = outcome.decode()
        if outcome == "fired" and job is not None:
            stored = Job(
                id=fired_id.decode(),
                type=job.type,
                payload=job.payload,
                status=JobStatus.PENDING,
                execution_time_ms=int(now),
                created_at=int(now),
                updated_at=int(now),
                max_attempts=job.max_attempts,
                idempotency_key=job.idempotency_key,
                headers=job.headers,
                priority=job.priority,
                limit_key=job.limit_key,
            )
            return Advance(applied=True, job=stored)
        if outcome == "held":
            return Advance(applied=True, held_back=True)
        return Advance(applied=outcome == "advanced")

    def _ns_of(self, schedule_id: str) -> str:
        return self._core.namespaces[self._core.shard_of_id(schedule_id)]


def _pairs(flat: Sequence[bytes]) -> dict[str, bytes]:
    return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}


def _decode_many(reply: Sequence[Any]) -> list[Schedule]:
    return [
        _decode(reply[i].decode(), _pairs(reply[i + 1]))
        for i in range(0, len(reply), 2)
        if reply[i + 1]
    ]


def _int(fields: dict[str, bytes], name: str) -> int | None:
    raw = fields.get(name)
    return None if raw is None or raw == b"" else int(raw)


def _decode(schedule_id: str, fields: dict[str, bytes]) -> Schedule:
    next_tick = _int(fields, "nx")
    return Schedule(
        id=schedule_id,
        name=fields["na"].decode(),
        template=JobTemplate(
            type=fields["ty"].decode(),
            payload=fields.get("pl", b""),
            headers=json.loads(fields.get("hd", b"{}")),
            max_attempts=_int(fields, "ma"),
            priority=_int(fields, "pr") or 0,
            limit_key=fields["lk"].decode() if "lk" in fields else None,
        ),
        cron=fields["cr"].decode() if "cr" in fields else None,
        interval_ms=_int(fields, "iv"),
        time_zone=fields["tzn"].decode(),
        overlap=_OVERLAP_BACK[fields["ov"].decode()],
        catchup_window_ms=int(fields["cw"]),
        paused=fields.get("pa") == b"1",
        # Redis's now, stored by a script (see stored_int).
        created_at=stored_int(fields["ca"]),
        anchor_ms=stored_int(fields["an"]),
        last_tick_ms=_int(fields, "lt"),
        next_tick_ms=None if next_tick is None or next_tick < 0 else next_tick,
        last_job_id=fields["lj"].decode() if "lj" in fields else None,
        version=int(fields["v"]),
        fired=int(fields.get("fi", b"0")),
        skipped_overlap=int(fields.get("so", b"0")),
        missed=int(fields.get("mi", b"0")),
    )
