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

from ._codec import job_from_hash, pairs_to_dict
from ._errors import ShardLayoutMismatch, translated
from ._layout import read_record, record_layout
from ._settings import RedisStoreSettings
from ._shards import shard_of_type
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
end
return 1
"""
"""Give a moved job its history back, unless a worker already took it in its new shard."""


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
            stored = await new.add(jobs, batch_key=key) if jobs else []
            with translated():
                for job, now_job in zip(jobs, stored, strict=True):
                    await new._core.hot.execute(
                        "EVAL",
                        _RESTORE,
                        1,
                        new._core.namespaces[shard_of_type(now_job.type, shards)]
                        + "j:"
                        + now_job.id,
                        job.created_at,
                        job.updated_at,
                        job.attempts,
                        job.last_error or "",
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
            running += int(await hot.execute("ZCARD", ns + "r:" + name))
        pending += int(await hot.execute("ZCARD", ns + "migrating"))
    return MigrationReport(moved=pending, running_left=running, dry_run=True)


__all__ = ["MigrationReport", "migrate_to_shards"]
