"""Upgrading idempotency and unique keys from their old names to the per-type ones.

Until commit 4371e20 a job's idempotency key was stored as ``k:<key>`` and its
unique-key lock as ``u:<key>``; since then both are per job type,
``k:<type>/<key>`` and ``u:<type>/<key>`` (``kkey``/``ukey`` in
_common.lua), and nothing reads the old names. A Redis written before keeps
its keys under the old names, where no enqueue finds them: a retried enqueue
would store a second job, and a unique key would not hold. This upgrade
renames them, so the scripts need no second lookup on their hot path.

It walks jobs, not the keyspace (no SCAN, which a cluster would need per
node): every job the store indexes (each type of ``tz``: its pending queues
``q:``, ``qp:<p>:``, ``qk:``, ``r:`` and ``d:<type>:<status>``, and
``migrating``), in pages. For each, one script reads the job's type, ``k``
and ``uk`` and, when the old name still names *this* job, moves it to the new
name with its remaining expiry (a DEBOUNCE lock's window, a finished job's
retention). A new name already taken wins (it was set after the upgraded
code started), and the old name is dropped. Old names whose job is gone are
left alone: nothing reads them, and they expire with their retention.

Safe to run while producers and workers of the new code run, and to run
again (a second run moves nothing). Run it after every process of the old
code has stopped: an old process keeps writing old names.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import translated
from ._store import RedisJobStore

PAGE = 500
"""Jobs per script call: a short step, so the store never stalls on one."""

_UPGRADE = """#!lua
-- KEYS: the shard's tz (routes the call; every key below is of its slot).
-- ARGV: the shard's prefix, '1' to move or '0' to count, then job ids.
-- Returns {idempotency keys moved, unique keys moved}.
local P, write = ARGV[1], ARGV[2] == '1'
local moved = {0, 0}
local function move(slot, old, new, id)
  if redis.call('GET', old) ~= id then
    return
  end
  moved[slot] = moved[slot] + 1
  if not write then
    return
  end
  if redis.call('EXISTS', new) == 0 then
    local ttl = redis.call('PTTL', old)
    if ttl > 0 then
      redis.call('SET', new, id, 'PX', string.format('%d', ttl)) -- whole: see int in _common.lua
    else
      redis.call('SET', new, id)
    end
  end
  redis.call('DEL', old)
end
for i = 3, #ARGV do
  local id = ARGV[i]
  local f = redis.call('HMGET', P .. 'j:' .. id, 't', 'k', 'uk')
  if f[1] then
    -- An old key holding a '/' can be the same Redis key as another job's
    -- new name (k:a/b): move() moves a key only while it still names this
    -- job, and never writes over a new name that exists.
    if f[2] then
      move(1, P .. 'k:' .. f[2], P .. 'k:' .. f[1] .. '/' .. f[2], id)
    end
    if f[3] then
      move(2, P .. 'u:' .. f[3], P .. 'u:' .. f[1] .. '/' .. f[3], id)
    end
  end
end
return moved
"""


@dataclass(frozen=True, slots=True)
class KeyUpgradeReport:
    """What one upgrade run found (and, unless a dry run, moved)."""

    jobs: int
    """Jobs visited."""
    idempotency_keys: int
    """``k:<key>`` names moved to ``k:<type>/<key>``."""
    unique_keys: int
    """``u:<key>`` names moved to ``u:<type>/<key>``."""
    dry_run: bool = False


async def upgrade_key_names(store: RedisJobStore, *, dry_run: bool = False) -> KeyUpgradeReport:
    """Move every job's old-named idempotency and unique keys to their per-type names.

    Visits each shard of the store's layout; see the module docstring.
    """
    core = store._core
    await core.resolve_layout()
    hot = core.hot
    jobs = ikeys = ukeys = 0
    with translated():
        for ns in core.namespaces:
            for index in await _indexes(store, ns):
                for start in range(0, 1 << 40, PAGE):  # bounded by the index's size
                    ids = await hot.execute("ZRANGE", index, start, start + PAGE - 1)
                    if ids:
                        jobs += len(ids)
                        write = "0" if dry_run else "1"
                        moved = await hot.execute("EVAL", _UPGRADE, 1, ns + "tz", ns, write, *ids)
                        ikeys += int(moved[0])
                        ukeys += int(moved[1])
                    if len(ids) < PAGE:
                        break
    return KeyUpgradeReport(jobs=jobs, idempotency_keys=ikeys, unique_keys=ukeys, dry_run=dry_run)


async def _indexes(store: RedisJobStore, ns: str) -> list[str]:
    """Every sorted set of the shard that names jobs.

    A job moving between two of them while the walk pages may be seen twice
    (harmless) or missed (a second run moves it).
    """
    hot = store._core.hot
    found = [ns + "migrating"]
    for raw in await hot.execute("ZRANGE", ns + "tz", 0, -1):
        name = raw.decode()
        found += [ns + "q:" + name, ns + "qk:" + name, ns + "r:" + name]
        found += [f"{ns}d:{name}:{status}" for status in (3, 4, 5)]
        levels = await hot.execute("ZRANGE", ns + "pl:" + name, 0, -1)
        found += [f"{ns}qp:{level.decode()}:{name}" for level in levels]
    return found
