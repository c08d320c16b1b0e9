"""Counters and their history on Redis (see ``jobqueue.domain.JobCounters``).

The counts live in one hash per shard, ``{jq}:ct``, field ``<kind>:<type>``,
moved by the scripts that make each transition (``count`` in _common.lua).
The history is one sorted set per shard, ``{jq}:hz``, scored by bucket start:
a member ``"<bucket>:<enqueued>:<completed>:<failed>:<retried>:<cancelled>:<leases_expired>"``
holds the shard's totals then. The sampling script writes a bucket only if
it holds none yet, so any number of servers sampling keep one series.
"""

from __future__ import annotations

from jobqueue.domain import COUNTER_KINDS, CounterSample, TypeCounters, counters_from_pairs

from ._core import StoreCore
from ._errors import translated
from ._fanout import gather_all

# One script per shard: it reads the shard's counters and writes its sample in
# one step. Redis's clock chooses the bucket: shard 0's script reads it, and
# the other shards are given the bucket it chose, so a sample taken across a
# bucket's edge still lands in one bucket on every shard.
# KEYS: ct, hz of the shard. ARGV: interval_ms, keep, the bucket or ''.
# Returns {1 when it wrote else 0, the bucket}.
_SAMPLE = """#!lua
local bucket = tonumber(ARGV[3])
if not bucket then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  bucket = now - now % tonumber(ARGV[1])
end
if #redis.call('ZRANGE', KEYS[2], bucket, '+inf', 'BYSCORE', 'LIMIT', 0, 1) > 0 then
  return {0, bucket}
end
local kinds = {'enqueued', 'completed', 'failed', 'retried', 'cancelled', 'leases_expired'}
local sums = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  local kind = string.match(flat[i], '^([^:]*):')
  sums[kind] = (sums[kind] or 0) + tonumber(flat[i + 1])
end
local member = {string.format('%d', bucket)}
for _, kind in ipairs(kinds) do
  member[#member + 1] = string.format('%d', sums[kind] or 0)
end
redis.call('ZADD', KEYS[2], bucket, table.concat(member, ':'))
-- A computed rank formatted whole: Redis 7.2.0-7.2.4 would pass a multiple
-- of 1e8 on as "1e+8", which ZREMRANGEBYRANK refuses (see int in _common.lua).
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, string.format('%d', -(tonumber(ARGV[2]) + 1)))
return {1, bucket}
"""


class Counters:
    """Read the counters, and sample their totals into the history."""

    def __init__(self, core: StoreCore) -> None:
        self._core = core

    async def counters(self) -> list[TypeCounters]:
        core = self._core

        async def read(ns: str) -> dict[bytes, bytes]:
            reply: dict[bytes, bytes] = await core.read(
                lambda: core.hot.execute("HGETALL", ns + "ct")
            )
            return reply

        pairs: dict[tuple[str, str], int] = {}
        for reply in await gather_all(read(ns) for ns in core.namespaces):
            for field, value in _items(reply):
                kind, _, job_type = field.partition(":")
                pairs[kind, job_type] = pairs.get((kind, job_type), 0) + int(value)
        return counters_from_pairs(pairs)

    async def record_sample(self, *, interval_ms: int, keep: int) -> bool:
        if interval_ms <= 0 or keep <= 0:
            raise ValueError("interval_ms and keep must be positive")
        core = self._core

        async def sample(ns: str, bucket: int | str) -> list[int]:
            keys = (ns + "ct", ns + "hz")
            reply = await core.hot.execute("EVAL", _SAMPLE, 2, *keys, interval_ms, keep, bucket)
            return [int(reply[0]), int(reply[1])]

        first, *others = core.namespaces
        with translated():
            wrote, bucket = await sample(first, "")
            rest = await gather_all(sample(ns, bucket) for ns in others)
        return any(flag == 1 for flag, _ in [(wrote, bucket), *rest])

    async def samples(self, *, since_ms: int = 0) -> list[CounterSample]:
        core = self._core

        async def read(ns: str) -> list[bytes]:
            reply: list[bytes] = await core.read(
                lambda: core.hot.execute("ZRANGE", ns + "hz", since_ms, "+inf", "BYSCORE")
            )
            return reply

        # Each shard samples its own counters: a bucket's sample is their sum.
        buckets: dict[int, list[int]] = {}
        for reply in await gather_all(read(ns) for ns in core.namespaces):
            for member in reply:
                at_ms, *values = (int(part) for part in member.decode().split(":"))
                sums = buckets.setdefault(at_ms, [0] * len(COUNTER_KINDS))
                for index, value in enumerate(values[: len(COUNTER_KINDS)]):
                    sums[index] += value
        return [
            CounterSample(at_ms=at_ms, **dict(zip(COUNTER_KINDS, sums, strict=True)))
            for at_ms, sums in sorted(buckets.items())
        ]


def _items(reply: dict[bytes, bytes] | list[bytes]) -> list[tuple[str, bytes]]:
    """HGETALL's reply as pairs, whichever shape the connection decodes it to."""
    if isinstance(reply, dict):
        return [(key.decode(), value) for key, value in reply.items()]
    return [(reply[i].decode(), reply[i + 1]) for i in range(0, len(reply), 2)]
