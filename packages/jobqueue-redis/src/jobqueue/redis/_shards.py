"""Virtual shards: which hash tag holds a job type's keys, and how a job id names it.

A Redis Cluster runs a script on one node, over keys of one slot. A queue
whose every key shared one hash tag lived in one slot, so on one master. Here
a queue is split into ``shards`` virtual shards: a job type belongs to shard
``crc32(type) % shards``, and shard ``k`` keeps *all* of today's keys of its
types (jobs, per-type indexes, tz, ts:*, lx, fx, cfg, sweep, k:, b:, w:)
under the hash tag ``{<prefix>.<k>}``. Different tags hash to different
slots, which the cluster spreads over its masters, and every script still
touches one tag's keys only, so it stays atomic.

With ``shards == 1`` (the default) the one shard's tag is ``{<prefix>}``:
exactly the layout before sharding, so a single Redis strands nothing.

A job id routes by itself: ``GetJob``/``CancelJob`` take only an id, and a
global id → shard index would be one more key on one node, crossed by every
write. So the store writes the shard into the last 16 bits of the id's
random part (UUIDv7 keeps its text form, its version and variant bits, and
its time order; 58 random bits remain, which is plenty within one
millisecond). With one shard nothing is rewritten: ids minted before
sharding keep working.
"""

from __future__ import annotations

import re
import zlib

MAX_SHARDS = 1 << 16
"""The last 16 bits of an id hold its shard."""

_SHARD_SUFFIX = re.compile(r"[0-9a-f]{4}")


def shard_of_type(job_type: str, shards: int) -> int:
    """The shard of a job type: a stable hash, the same in every process and release."""
    if shards == 1:
        return 0
    return zlib.crc32(job_type.encode()) % shards


def shard_of_id(job_id: str, shards: int) -> int:
    """The shard an id names; an id that names none still routes somewhere.

    Such an id cannot name a stored job (``add`` writes the shard into every
    id it stores when there is more than one), so any shard answers "not
    found" for it; a hash keeps the choice stable.
    """
    if shards == 1:
        return 0
    if _SHARD_SUFFIX.fullmatch(job_id[-4:]):
        shard = int(job_id[-4:], 16)
        if shard < shards:
            return shard
    return zlib.crc32(job_id.encode()) % shards


def with_shard(job_id: str, shard: int, shards: int) -> str:
    """``job_id`` rewritten to name ``shard``: its last four hex digits become the shard.

    Raises ValueError for an id that does not end in four lowercase hex
    digits (the service mints UUIDs, which always do).
    """
    if shards == 1:
        return job_id
    if not _SHARD_SUFFIX.fullmatch(job_id[-4:]):
        raise ValueError("with more than one shard, job ids must end in 4 lowercase hex digits")
    return f"{job_id[:-4]}{shard:04x}"


def namespace(prefix: str, shard: int, shards: int) -> str:
    """The key namespace (hash tag and colon) of one shard."""
    if shards == 1:
        return "{" + prefix + "}:"
    return "{" + prefix + "." + str(shard) + "}:"


_FIXED_KEYS: dict[str, tuple[str, ...]] = {
    "add": ("tz", "cfg", "ts:1", "ct"),
    "claim": ("tz", "lx", "ts:2"),
    "settle": ("tz", "cfg", "fx", "ts:1", "ts:3", "ts:4", "ts:5", "ct"),
    "renew": ("tz", "lx"),
    "cancel": ("tz", "cfg", "fx", "ts:5", "ct"),
    "requeue": ("tz", "cfg", "lx", "fx", "sweep", "ts:1", "ts:3", "ts:4", "ts:5", "ct"),
    "stats": ("tz", "cfg"),
    "list": ("tz", "cfg", "ts:1", "ts:2", "ts:3", "ts:4", "ts:5"),
    "watchers": (),
    "retry": ("tz", "cfg", "ts:1", "ct"),
    "delete": ("cfg",),
    "bulk": ("tz", "cfg", "fx", "ts:1", "ts:5", "ct"),
    "gate": ("pz",),
    "progress": ("tz",),
}
"""The fixed keys of its shard each script touches, declared in its KEYS (see _common.lua)."""


def script_keys(ns: str) -> dict[str, tuple[str, ...]]:
    """Per script, the KEYS that declare the shard's fixed keys it touches."""
    return {name: tuple(ns + key for key in keys) for name, keys in _FIXED_KEYS.items()}
