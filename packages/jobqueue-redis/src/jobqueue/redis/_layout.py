"""The shard layout recorded in Redis, so no process of a prefix guesses it.

Which keys hold a job depends on the number of virtual shards (_shards.py).
A worker, a CLI or a second server started without that setting used to
assume one shard and, against a sharded queue, read and write keys no other
process used: jobs stranded, silently. So the layout lives with the data:
field ``shards`` of ``{<prefix>}:cfg`` (the one-shard namespace, whatever
the layout; on a cluster it is one key on one master, read once per process).

- A store *without* an explicit ``shards`` adopts the recorded number. When
  nothing is recorded, the prefix was never written by a store of this
  version: its first write records 1 (the layout it then writes), and reads
  before that use 1 and look again at the next call, so a worker started
  before the first producer still follows the producer's layout.
- A store *with* an explicit ``shards`` records it when nothing is recorded
  (``HSETNX``: of two processes racing, one wins and the other compares),
  and fails with ``ShardLayoutMismatch`` when the record says otherwise. A
  sharded store also refuses a prefix whose jobs are still in the one-shard
  layout (``{<prefix>}:tz`` holds types): ``jobqueue-server migrate`` moves
  them and rewrites the record (_migrate.py).

A process learns the layout once and keeps it: after a migration, restart
the processes that ran with the old one (docs/operations.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobqueue.domain import StoreUnavailable

from ._errors import ShardLayoutMismatch, translated

if TYPE_CHECKING:
    from ._core import StoreCore

FIELD = "shards"
"""The field of ``{<prefix>}:cfg`` that records the number of virtual shards."""


async def read_record(core: StoreCore) -> int | None:
    """The number of shards recorded for the store's prefix, or None."""
    key = core.ns + "cfg"
    raw = await core.read(lambda: core.hot.execute("HGET", key, FIELD))
    return None if raw is None else int(raw)


async def recorded_layout(core: StoreCore, *, writing: bool) -> tuple[int, bool]:
    """The number of shards to use now, and whether it is final for this process."""
    settings = core.settings
    explicit = settings.shards
    recorded = await read_record(core)
    if recorded is None:
        if explicit is None and not writing:
            return 1, False  # nothing written yet: the first writer decides
        wanted = explicit or 1
        if wanted > 1:
            old_types = await core.read(lambda: core.hot.execute("EXISTS", core.ns + "tz"))
            if int(old_types):
                raise ShardLayoutMismatch(
                    key_prefix=settings.key_prefix, configured=wanted, recorded=None
                )
        with translated():
            await core.hot.execute("HSETNX", core.ns + "cfg", FIELD, wanted)
        recorded = await read_record(core)
        if recorded is None:
            raise StoreUnavailable("the shard layout record vanished as it was written")
    if explicit is not None and recorded != explicit:
        raise ShardLayoutMismatch(
            key_prefix=settings.key_prefix, configured=explicit, recorded=recorded
        )
    return recorded, True


async def record_layout(core: StoreCore, shards: int) -> int | None:
    """Record ``shards`` for the prefix (the migration's switch); the number recorded before."""
    before = await read_record(core)
    with translated():
        await core.hot.execute("HSET", core.ns + "cfg", FIELD, shards)
    return before
