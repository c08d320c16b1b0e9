"""Moving a queue from the one-shard layout ``{prefix}`` to ``shards`` virtual shards.

A queue stored before sharding (or with ``shards=1``) lives under
``{<prefix>}``; a store with ``shards=N`` reads ``{<prefix>.<k>}``. Nothing
is stranded:

- PENDING jobs (due or scheduled) are moved here, in batches: a script on the
  old slot takes a batch out of its queues into ``{prefix}:migrating`` (no
  worker can claim them meanwhile), the sharded store adds them (ids rewritten
  to name their shard, see _shards.py) under a batch idempotency key made of
  the old ids, their attempts, last error and creation time are restored, and
  a last script forgets them in the old layout, leaving ``{prefix}:moved:<old
  id>`` → new id. A migration stopped at any point is resumed by running it
  again: the batch in ``migrating`` comes back first, and its batch key makes
  the second add return the jobs the first one stored.
- Paused types, limits (``lm:<type>``, per type and per key) and schedules
  move to their type's shard, copied first and then removed from the old
  layout (a rerun finishes a stopped one).
- RUNNING jobs stay where they are until their workers settle them (or their
  lease expires: the migration sweeps the old layout first, and a job handed
  back is moved by the next run). FINISHED jobs stay until their retention
  ends.
- A sharded store reads the old layout where an id is not found: ``get`` and
  ``cancel`` by an old id reach a job still in the old layout, or follow its
  ``moved:`` pointer (docs/redis-data-model.md, "Moving existing data").
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from importlib import resources

from jobqueue.domain import Job, TypeLimits

from ._codec import job_from_hash, pairs_to_dict
from ._errors import ShardLayoutMismatch, translated
from ._key_upgrade import upgrade_key_names
from ._layout import read_record, record_layout
from ._settings import RedisStoreSettings
from ._shards import shard_of_type, with_shard
from ._store import RedisJobStore


def _script(name: str) -> str:
    return "#!lua\n" + resources.files(__package__).joinpath(f"lua/{name}.lua").read_text()


_TAKE = _script("migrate_take")
_DONE = _script("migrate_done")
_RESTORE = """#!lua
if redis.call('HGET', KEYS[1], 's') == '1' and redis.call('HEXISTS', KEYS[1], 'a') == 0 then
  redis.call('HSET', KEYS[1], 'c', ARGV[1], 'u', ARGV[2], 'a', ARGV[3])
  if ARGV[4] ~= '' then
    redis.call('HSET', KEYS[1], 'err', ARGV[4])
  end
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[1], 'uk', ARGV[5], 'uq', ARGV[6])
    if ARGV[7] == '1' then
      if ARGV[8] ~= '' then
        redis.call('SET', KEYS[2], ARGV[9], 'NX', 'PX', ARGV[8])
      else
        redis.call('SET', KEYS[2], ARGV[9], 'NX')
      end
    end
  end
end
return 1
"""
"""Give a moved job its history back, unless a worker already took it in its new shard.

Its unique rule is restored as it was, never decided again (two jobs sharing a
key, one claimed and one waiting, are both kept), and the key's lock is taken
only for the job the old layout's lock names (KEYS[2], ARGV[7..9]).
"""


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What one migration run did, and what it left in the old layout."""

    moved: int
    """PENDING jobs now in their shards."""
    running_left: int
    """RUNNING jobs still in the old layout: run the migration again once they settle."""
    dry_run: bool = False
    """Nothing was changed: ``moved`` counts the PENDING jobs a run would move now."""


async def migrate_to_shards(
    settings: RedisStoreSettings, *, batch: int = 500, dry_run: bool = False
) -> MigrationReport:
    """Move the PENDING jobs of ``{settings.key_prefix}`` into ``settings.shards`` shards.

    Safe to run while producers and workers of either layout run, and to run
    again: see the module docstring. First it records ``settings.shards`` as
    the prefix's layout (_layout.py), so every process started from then on
    uses the shards; processes already running keep the layout they learnt
    until restarted, and a later run moves what they still enqueued.
    Raises ShardLayoutMismatch when the prefix is recorded with another
    number of shards (moving between two sharded layouts is not supported).
    """
    shards = settings.shards
    if shards is None or shards == 1:
        raise ValueError("migrating needs shards > 1: one shard is the old layout itself")
    old = RedisJobStore(dataclasses.replace(settings, shards=1, retention_ms=None))
    old._core.fix_layout(1)  # the old layout, whatever Redis records
    new = RedisJobStore(settings)
    ns = settings.namespace
    moved = 0
    try:
        recorded = await read_record(old._core)
        if recorded not in (None, 1, shards):
            raise ShardLayoutMismatch(
                key_prefix=settings.key_prefix, configured=shards, recorded=recorded
            )
        if dry_run:
            return await _count(old, ns)
        await record_layout(old._core, shards)
        await old.requeue_expired()  # leases that lapsed go back to their queue, then move
        # Keys stored before they were per type would be left behind (_lock_of
        # reads the per-type lock): name them as today's scripts do first.
        await upgrade_key_names(old)
        for _ in range(1_000_000):  # bounded: each round moves a batch or ends
            with translated():
                flat = await old._core.hot.execute(
                    "EVAL", _TAKE, 2, ns + "tz", ns + "migrating", ns, batch
                )
            if not flat:
                break
            jobs = [
                job_from_hash(flat[i].decode(), pairs_to_dict(flat[i + 1]))
                for i in range(0, len(flat), 2)
                if flat[i + 1]
            ]
            old_ids = [flat[i].decode() for i in range(0, len(flat), 2)]
            key = "migrate:" + hashlib.sha1(",".join(old_ids).encode()).hexdigest()
            # Stored without their unique rules: add would decide each key
            # again and answer a job with another that shares it (both are
            # kept; the rule and the lock come back with _RESTORE).
            plain = [dataclasses.replace(job, unique=None) for job in jobs]
            stored = await new.add(plain, batch_key=key) if jobs else []
            with translated():
                for job, now_job in zip(jobs, stored, strict=True):
                    new_ns = new._core.namespaces[shard_of_type(now_job.type, shards)]
                    lock_args = await _lock_of(old, ns, new_ns, job)
                    await new._core.hot.execute(
                        "EVAL",
                        _RESTORE,
                        2,
                        new_ns + "j:" + now_job.id,
                        lock_args[0],
                        job.created_at,
                        job.updated_at,
                        job.attempts,
                        job.last_error or "",
                        *lock_args[1:],
                        now_job.id,
                    )
                pairs = [
                    item for job, s in zip(jobs, stored, strict=True) for item in (job.id, s.id)
                ]
                await old._core.hot.execute(
                    "EVAL", _DONE, 2, ns + "cfg", ns + "migrating", ns, *pairs
                )
                if len(jobs) < len(old_ids):  # hashes gone (never in practice): unmark them
                    gone = [i for i in old_ids if i not in {job.id for job in jobs}]
                    await old._core.hot.execute("ZREM", ns + "migrating", *gone)
            moved += len(jobs)
        await _move_paused_types(old, new, ns, shards)
        await _move_limits(old, new, ns)
        await _move_schedules(old, new, ns, shards)
        left = await _count(old, ns)
        return MigrationReport(moved=moved, running_left=left.running_left)
    finally:
        await old.close()
        await new.close()


async def _count(old: RedisJobStore, ns: str) -> MigrationReport:
    """What the old layout holds now: PENDING jobs (and any batch taken), RUNNING jobs."""
    hot = old._core.hot
    pending = running = 0
    with translated():
        for job_type in await hot.execute("ZRANGE", ns + "tz", 0, -1):
            name = job_type.decode()
            pending += int(await hot.execute("ZCARD", ns + "q:" + name))
            for level in await hot.execute("ZRANGE", ns + "pl:" + name, 0, -1):
                pending += int(await hot.execute("ZCARD", f"{ns}qp:{level.decode()}:{name}"))
            pending += int(await hot.execute("ZCARD", ns + "qk:" + name))
            running += int(await hot.execute("ZCARD", ns + "r:" + name))
        pending += int(await hot.execute("ZCARD", ns + "migrating"))
    return MigrationReport(moved=pending, running_left=running, dry_run=True)


async def _lock_of(old: RedisJobStore, ns: str, new_ns: str, job: Job) -> list[str | int]:
    """_RESTORE's lock arguments: the new lock key, then uk, uq, take ('1'/''), PX ms."""
    rule = job.unique
    if rule is None:
        return [new_ns + "j:" + job.id, "", "", "", ""]
    name = f"u:{job.type}/{rule.key}"
    with translated():
        holder = await old._core.hot.execute("GET", ns + name)
        ttl = int(await old._core.hot.execute("PTTL", ns + name))
    take = holder is not None and holder.decode() == job.id and ttl != -2
    spec = f"{int(rule.scope)} {int(rule.on_conflict)} {rule.window_ms}"
    return [new_ns + name, rule.key, spec, "1" if take else "", ttl if ttl > 0 else ""]


async def _move_paused_types(old: RedisJobStore, new: RedisJobStore, ns: str, shards: int) -> None:
    """Each paused type's flag into its shard's ``pz``, then out of the old one."""
    hot = old._core.hot
    with translated():
        for raw in await hot.execute("SMEMBERS", ns + "pz"):
            job_type = raw.decode()
            shard_ns = new._core.namespaces[shard_of_type(job_type, shards)]
            await new._core.hot.execute("SADD", shard_ns + "pz", job_type)
            await hot.execute("SREM", ns + "pz", job_type)


_LIMITED = """#!lua
-- KEYS: tz of the old layout (routes the call to the node of its slot, where
-- every lm: key of the prefix lives). ARGV: cursor, MATCH pattern.
return redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 1000)
"""
"""One SCAN step over the old layout's limit hashes: a short step, never a stall."""


def _glob_escaped(text: str) -> str:
    """``text`` as a literal inside a SCAN MATCH pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


async def _limited_types(old: RedisJobStore, ns: str) -> list[str]:
    """The types with an ``lm:`` hash in the old layout, limits set or not.

    Found by SCAN, not from ``tz``: limits are often set before a type's first
    job, or outlive its last. The script routes the SCAN to the old slot's node
    (on a cluster a bare SCAN would go to any node).
    """
    prefix = ns + "lm:"
    found: set[str] = set()
    cursor = b"0"
    with translated():
        for _ in range(1_000_000):  # bounded: the cursor comes back to 0
            cursor, keys = await old._core.hot.execute(
                "EVAL", _LIMITED, 1, ns + "tz", cursor, _glob_escaped(prefix) + "*"
            )
            found.update(key.decode()[len(prefix) :] for key in keys)
            if cursor in (b"0", 0, "0"):
                break
    return sorted(found)


async def _move_limits(old: RedisJobStore, new: RedisJobStore, ns: str) -> None:
    """Each type's limits (``lm:<type>``, per type and per key) into its shard.

    Set in the shard through ``set_type_limits`` (gate.lua, as an operator
    would: a worker is woken), then cleared in the old layout (its ``kx`` mark
    stays for the keyed jobs still RUNNING there). Limits already set in the
    shard win: they were set through the sharded layout after it was recorded,
    so later than the old ones. A run stopped in between leaves both; the next
    run keeps the shard's and only clears the old. A type's start history
    (``rs:``, ``ks:``) is not moved: its rate windows start afresh in the shard,
    and jobs still RUNNING in the old layout do not count against the shard's
    concurrency until they settle.
    """
    for job_type in await _limited_types(old, ns):
        limits = await old._gates.limits(job_type)
        if limits.unlimited:
            continue
        if (await new.type_limits(job_type)).unlimited:
            await new.set_type_limits(job_type, limits)
        await old._gates.set_limits(job_type, TypeLimits())


async def _move_schedules(old: RedisJobStore, new: RedisJobStore, ns: str, shards: int) -> None:
    """Each schedule (``sc:<id>``, its ``sa`` and ``sx`` entries) into its job type's shard.

    Its id is rewritten to name that shard, as a job's is (_shards.py), since
    the sharded store finds a schedule, and fires its jobs, by the shard its id
    names. Copied first, then removed from the old layout: a run stopped in
    between leaves both, and the next run keeps the shard's copy (which may
    have fired since) and only removes the old one.
    """
    hot = old._core.hot
    with translated():
        for raw in await hot.execute("ZRANGE", ns + "sa", 0, -1):
            sid = raw.decode()
            fields = await hot.execute("HGETALL", ns + "sc:" + sid)
            if fields:
                data = pairs_to_dict(fields)
                shard = shard_of_type(data[b"ty"].decode(), shards)
                shard_ns = new._core.namespaces[shard]
                new_sid = with_shard(sid, shard, shards)
                due = await hot.execute("ZSCORE", ns + "sx", sid)
                if not await new._core.hot.execute("EXISTS", shard_ns + "sc:" + new_sid):
                    flat = [item for pair in data.items() for item in pair]
                    await new._core.hot.execute("HSET", shard_ns + "sc:" + new_sid, *flat)
                    await new._core.hot.execute("ZADD", shard_ns + "sa", 0, new_sid)
                    if due is not None:
                        await new._core.hot.execute("ZADD", shard_ns + "sx", due, new_sid)
            await hot.execute("DEL", ns + "sc:" + sid)
            await hot.execute("ZREM", ns + "sx", sid)
            await hot.execute("ZREM", ns + "sa", sid)


__all__ = ["MigrationReport", "migrate_to_shards"]
