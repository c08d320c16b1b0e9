-- Helpers prepended to every script. Keys: P .. 'j:' .. id job hash,
-- 'q:' .. type pending (score: due ms), 'r:' .. type running (score: lease
-- deadline), 'd:' .. type .. ':' .. status finished (score: finish ms),
-- 'k:' .. type .. '/' .. key idempotency key and 'u:' .. type .. '/' .. key
-- unique key (both per job type: kkey and ukey below), 'b:' .. key batch idempotency key ("stored_ms:"
-- then the ids it stored, comma-separated), 'w:' .. type wake-up list, 'ev:' .. id watch channel,
-- '{prefix}:cancels' (shard or not) the channel of cancel requests for running jobs.
-- Indexes that keep every cost in proportion to work, not history:
-- 'tz' every type that holds jobs (score 0, ordered by name), 'ts:' .. status
-- the types that may hold jobs of that status (pruned lazily when empty),
-- 'lx' types by a lower bound of their earliest lease deadline (the sweep
-- visits only types whose bound passed), 'fx' types by a lower bound of their
-- oldest finish (the trim visits only types with something to forget).
-- 'cfg' settings every server and worker of the prefix shares: retention_ms
-- and max_finished (the most finished jobs kept per type and status).
-- Every key a script touches carries the shard's hash tag (P is
-- '{prefix}:' or '{prefix.N}:', see _shards.py), and every script runs with
-- the '#!lua' shebang, under which Redis Cluster refuses a script that
-- reaches a key of another slot: a script is atomic in one slot, provably.
-- KEYS declares the shard's fixed keys the script touches (its header lists
-- them) and, for scripts about one job, the job's hash; keys named by data
-- (a type's q/r/d/w, the jobs of a batch, idempotency keys) are built from P.
-- Job hash fields: t type, p payload, s status, e due, c created, u updated,
-- m max attempts, k idempotency key, a attempts, l lease token, d lease
-- deadline, n 1 while the lease is unconfirmed, z unconfirmed expiries in a
-- row, x cancel requested, r result, err last error, f finished, w watchers,
-- lk limit key, g 1 while a lease of a concurrency-limited type (its settle
-- wakes an idle worker for the freed slot).

-- A whole number as Redis should read it: where a computed Lua number goes to
-- an argument Redis parses as an integer (PX, PEXPIRE, LIMIT, ZRANGE ranks)
-- or to a hash field read back as one. Redis 7.2.0 to 7.2.4 print a number
-- argument with fpconv_dtoa, which writes multiples of 1e8 in exponent form
-- (200000000 -> '2e+8', redis/redis#13113): an integer argument then fails
-- mid-script, and a stored timestamp reads '1.7646e+12'. (%d: a C long, 64
-- bits on Linux. Scores, which Redis parses as doubles, need none of this,
-- nor does `..`, which writes up to 14 digits whole.)
local function int(n)
  return string.format('%d', n)
end

-- Redis decides time: every script reads its clock here, never from a caller,
-- so hosts with skewed clocks agree on due times and lease deadlines.
-- (Scripts replicate by their effects, the default since Redis 5, so TIME is safe.)
local function clock_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The lease a caller names, if it still holds: right token, deadline not passed.
-- Returns the job's type, its cancel flag, its idempotency key, its unique
-- key, its limit key, its gated flag and its watcher count (each false if
-- none), or nil: one read serves the whole settle of the job.
local function held(jk, token, now)
  local f = redis.call('HMGET', jk, 's', 'l', 'd', 't', 'x', 'k', 'uk', 'lk', 'g', 'w')
  if f[1] ~= '2' or f[2] ~= token or tonumber(f[3]) <= now then
    return nil
  end
  return f[4], f[5], f[6], f[7], f[8], f[9], f[10]
end

-- The names of a job type's idempotency key and unique-key lock. Keys are
-- per job type on every store and layout (a type's keys live in its shard);
-- '/' never occurs in a type, so no two (type, key) pairs share a name.
local function kkey(P, jtype, key)
  return P .. 'k:' .. jtype .. '/' .. key
end
local function ukey(P, jtype, key)
  return P .. 'u:' .. jtype .. '/' .. key
end

-- Release a unique key (ukey(), see add.lua) if it still names the job:
-- called in the step that moves the job out of its key's scope, so no lock
-- outlives its job whatever crashes.
local function unlock(P, jtype, key, id)
  if key then
    local lk = ukey(P, jtype, key)
    if redis.call('GET', lk) == id then
      redis.call('DEL', lk)
    end
  end
end

-- Read every key a step will write before it writes any. A script is not
-- rolled back when a command in it fails, and on a cluster a command fails
-- when its key is in a slot being migrated and has already left this node
-- (ASK) - a key about to be created counts, since it is not here. Probing
-- first makes such a step fail before it changed anything (the caller sees
-- an error and retries), never halfway: a job out of its queue but not
-- leased would be lost. No slot ever moves on a single Redis (or Sentinel):
-- the store loads its scripts there with PROBE false (_core.py), and a step
-- skips its probes, which cost a plain add a third of its script time.
local PROBE = true
local function probe(keys)
  if PROBE then
    redis.call('EXISTS', unpack(keys))
  end
end

local DEFAULT_RETENTION_MS = 86400000
local DEFAULT_MAX_FINISHED = 100000

-- The retention settings, read from Redis so that whoever finishes a job,
-- server or worker, applies the same ones.
local function config(P)
  local c = redis.call('HMGET', P .. 'cfg', 'retention_ms', 'max_finished')
  return tonumber(c[1]) or DEFAULT_RETENTION_MS, tonumber(c[2]) or DEFAULT_MAX_FINISHED
end

-- Whether a job is gone: deleted, or past its retention (Redis expires the
-- hash a little later, lazily).
local function gone(jk, now, retention)
  local finished = redis.call('HGET', jk, 'f')
  if finished then
    return tonumber(finished) + retention <= now
  end
  return redis.call('EXISTS', jk) == 0
end

-- Push a wake-up token for idle workers of a type, unless one is waiting already.
local function wake(P, jtype)
  local key = P .. 'w:' .. jtype
  if redis.call('LLEN', key) == 0 then
    redis.call('LPUSH', key, 1)
  end
end

-- Priorities. A type's PENDING jobs of priority 0 (every job that names none)
-- are in 'q:' .. type; those of a priority p ~= 0 in 'qp:' .. p .. ':' .. type
-- (a type may hold ':', a number not), each scored by due time; the type's
-- nonzero levels are in 'pl:' .. type (member p, score -p). A claim walks the
-- levels highest first: the highest due priority goes first, FIFO by due time
-- within one, and a scheduled job takes its priority when it falls due. A job
-- hash keeps its priority in 'pr' (absent: 0).
local function qkey(P, jtype, prio)
  if not prio or prio == '' or prio == '0' then
    return P .. 'q:' .. jtype
  end
  return P .. 'qp:' .. prio .. ':' .. jtype
end

-- A type's PENDING queues, highest priority first; one key (q:) for a type
-- that never had a job with a priority, at the cost of one lookup.
local function queues(P, jtype)
  local levels = redis.call('ZRANGE', P .. 'pl:' .. jtype, 0, -1)
  local q = P .. 'q:' .. jtype
  if #levels == 0 then
    return {q}
  end
  local out = {}
  for _, prio in ipairs(levels) do
    if q and tonumber(prio) < 0 then
      out[#out + 1] = q
      q = false
    end
    out[#out + 1] = P .. 'qp:' .. prio .. ':' .. jtype
  end
  if q then
    out[#out + 1] = q
  end
  return out
end

-- Limit keys (Job.limit_key, field lk). A type's PENDING jobs with a key are
-- in 'kq:' .. type .. '/' .. key (one queue per key, by due time; '/' never
-- occurs in a type) and all together in 'qk:' .. type (listings, stats,
-- migration). 'kr:' .. type is the ring of its keys with PENDING jobs, each
-- scored by when a claim may next serve it: its head's due time, the time it
-- was last served (least recently served first: turns), or when its per-key
-- limit frees; member '' is the lane of the type's jobs without a key.
-- 'kn:' .. type counts RUNNING jobs per key, 'ks:' .. type .. '/' .. key logs
-- a key's starts (per-key rate). Field kx of 'lm:' .. type is 1 while the type
-- has a ring: the claim reads it with the limits, so a type without keyed jobs
-- costs nothing more.
local function kqkey(P, jtype, key)
  return P .. 'kq:' .. jtype .. '/' .. key
end

-- The keys an enqueue of a keyed job writes, for a probe before the first write.
local function keyed_keys(P, jtype, key)
  return {P .. 'qk:' .. jtype, kqkey(P, jtype, key), P .. 'kr:' .. jtype, P .. 'lm:' .. jtype}
end

-- Queue a keyed job; a key new to the ring (with the '' lane when the ring is
-- new) is served from its due time on, and a key already there no later.
local function enqueue_keyed(P, jtype, key, due, id)
  local kq = kqkey(P, jtype, key)
  redis.call('ZADD', P .. 'qk:' .. jtype, due, id)
  redis.call('ZADD', kq, due, id)
  if redis.call('ZADD', P .. 'kr:' .. jtype, 'LT', due, key) == 1 then
    redis.call('ZADD', P .. 'kr:' .. jtype, 'NX', 0, '')
    redis.call('HSET', P .. 'lm:' .. jtype, 'kx', 1)
  end
  return kq
end

-- Take a PENDING job out of its queue (cancel, REPLACE). A key whose queue
-- empties stays in the ring until a claim visits it and drops it.
local function dequeue(P, jtype, prio, key, id)
  if key and key ~= '' then
    redis.call('ZREM', P .. 'qk:' .. jtype, id)
    redis.call('ZREM', kqkey(P, jtype, key), id)
    return
  end
  local q = qkey(P, jtype, prio)
  redis.call('ZREM', q, id)
  if q ~= P .. 'q:' .. jtype and redis.call('EXISTS', q) == 0 then
    redis.call('ZREM', P .. 'pl:' .. jtype, string.match(q, 'qp:(%-?%d+):'))
  end
end

-- The keys dequeue writes, for the caller's probe.
local function pending_keys(P, jtype, prio, key)
  if key and key ~= '' then
    return {P .. 'qk:' .. jtype, kqkey(P, jtype, key)}
  end
  return {qkey(P, jtype, prio), P .. 'pl:' .. jtype}
end

-- A type's PENDING queues for reading (listings, stats): its priorities'
-- queues and, when it has keyed jobs, the queue of them all.
local function all_queues(P, jtype)
  local qs = queues(P, jtype)
  if redis.call('EXISTS', P .. 'qk:' .. jtype) == 1 then
    qs[#qs + 1] = P .. 'qk:' .. jtype
  end
  return qs
end

-- Put a job in the queue of its priority, registering a nonzero level; a job
-- with a limit key (`key`) in its key's queue instead.
local function enqueue(P, jtype, prio, due, id, key)
  if key and key ~= '' then
    return enqueue_keyed(P, jtype, key, due, id)
  end
  local q = qkey(P, jtype, prio)
  redis.call('ZADD', q, due, id)
  if q ~= P .. 'q:' .. jtype then
    redis.call('ZADD', P .. 'pl:' .. jtype, -tonumber(prio), prio)
  end
  return q
end

-- Forget a nonzero level whose queue emptied (claim and cancel call it).
local function prune_level(P, jtype, q)
  if q ~= P .. 'q:' .. jtype and redis.call('EXISTS', q) == 0 then
    redis.call('ZREM', P .. 'pl:' .. jtype, string.match(q, 'qp:(%-?%d+):'))
  end
end

-- Wake an idle worker when a job is due now, or is the new head of its queue
-- (`q`, its priority's; q: when not given): a worker blocked until a later
-- due time must wake to learn the earlier one.
local function wake_for(P, jtype, id, due, now, q)
  if due <= now then
    wake(P, jtype)
  else
    local head = redis.call('ZRANGE', q or (P .. 'q:' .. jtype), 0, 0)
    if head[1] == id then
      wake(P, jtype)
    end
  end
end

-- Tell watchers of a job that it changed; costs one HEXISTS when nobody watches.
-- PUBLISH is 'SPUBLISH' on a cluster (the channel is in the shard's slot), set
-- by the store before this file (_core.py, _cluster_pubsub.py). A caller that
-- read the job's 'w' already with the rest of its fields (claim.lua; settle.lua
-- through held and finish's `watched`) calls tell instead when it was set.
local function tell(P, id)
  redis.call(PUBLISH, P .. 'ev:' .. id, 1)
end
local function notify(P, jk, id)
  if redis.call('HEXISTS', jk, 'w') == 1 then
    tell(P, id)
  end
end

-- Forget a finished job now: its hash, its idempotency key if it still names it.
local function forget(P, id)
  local jk = P .. 'j:' .. id
  local f = redis.call('HMGET', jk, 't', 'k')
  if f[2] and redis.call('GET', kkey(P, f[1], f[2])) == id then
    redis.call('DEL', kkey(P, f[1], f[2]))
  end
  redis.call('DEL', jk)
end

-- Cumulative per-type counters ('ct', one hash per shard), moved in the same
-- step as the transition they count, so every process (servers, direct
-- workers) reports the same truth and it survives restarts. Field
-- '<kind>:<type>' (a kind has no colon): enqueued, completed, failed,
-- retried, cancelled, leases_expired. Scripts declare 'ct' last in KEYS.
local COUNTED = {['3'] = 'completed', ['4'] = 'failed', ['5'] = 'cancelled'}
local function count(P, jtype, kind, n)
  redis.call('HINCRBY', P .. 'ct', kind .. ':' .. jtype, n)
end

-- Move a job to a terminal status and start its retention clock. Past the
-- count cap, the oldest finished jobs of its type and status go at once, at
-- most two per finish, so the cap holds without a long step.
-- The per-type side of finishing: the status and finish indexes, and the
-- count cap (at most two forgotten per job finished), once per type and
-- status for `n` jobs finished by one script.
local function finish_index(P, dk, jtype, status, now, cap, n)
  count(P, jtype, COUNTED[tostring(status)], n)
  redis.call('ZADD', P .. 'ts:' .. status, 0, jtype)
  redis.call('ZADD', P .. 'fx', 'LT', now, jtype)
  local excess = redis.call('ZCARD', dk) - cap
  if excess > 0 then
    local oldest = redis.call('ZPOPMIN', dk, math.min(excess, 2 * n))
    for i = 1, #oldest, 2 do
      forget(P, oldest[i])
    end
  end
end

-- `ikey` is the job's idempotency key when the caller read it already (false:
-- none), nil to read it here.
-- `ukey` likewise for its unique key, and `watched` for its watchers ('w'): a
-- settle read all three with the lease.
-- finish_kept leaves the hash's own expiry to its caller, who reads the hash
-- first: PEXPIRE deletes a key on the spot when its expiry is already past,
-- and Redis 7.0 checks that against a later reading of its clock than the
-- one it adds the retention to, so a 1 ms retention is past whenever the
-- millisecond turns in between (about 1 call in 10,000). What finish_kept
-- still reads or tells (the idempotency key, the watchers) and any reply
-- built from the hash must come before it.
local function finish_kept(P, jk, id, jtype, status, now, retention, cap, batch, ikey, ulock,
    watched)
  local stamp = int(now)
  redis.call('HSET', jk, 's', status, 'u', stamp, 'f', stamp)
  redis.call('HDEL', jk, 'l', 'd', 'n', 'z', 'g')
  if ulock == nil then
    ulock = redis.call('HGET', jk, 'uk')
  end
  unlock(P, jtype, ulock, id)
  local dk = P .. 'd:' .. jtype .. ':' .. status
  redis.call('ZADD', dk, now, id)
  if ikey == nil then
    ikey = redis.call('HGET', jk, 'k')
  end
  if ikey then
    redis.call('PEXPIRE', kkey(P, jtype, ikey), int(retention))
  end
  if batch then
    local seen = batch[dk]
    if seen then
      seen.n = seen.n + 1
    else
      batch[dk] = {jtype = jtype, status = status, n = 1}
    end
  else
    finish_index(P, dk, jtype, status, now, cap, 1)
  end
  if watched == nil then
    notify(P, jk, id)
  elseif watched then
    tell(P, id)
  end
end

local function finish(P, jk, id, jtype, status, now, retention, cap, batch, ikey, ulock, watched)
  finish_kept(P, jk, id, jtype, status, now, retention, cap, batch, ikey, ulock, watched)
  redis.call('PEXPIRE', jk, int(retention))
end

-- The keys a requeue of the job writes beyond q:, w: and ts:1: its
-- priority's queue and level set, or its key's, for the caller's probe
-- before its first write.
local function prio_keys(P, jk, jtype)
  local f = redis.call('HMGET', jk, 'pr', 'lk')
  local prio = f[1]
  if f[2] then
    return keyed_keys(P, jtype, f[2])
  end
  if prio and prio ~= '0' then
    return {qkey(P, jtype, prio), P .. 'pl:' .. jtype}
  end
  return {}
end

-- Put a job back in the queue of its priority, due at `due`. The caller
-- probed its keys (prio_keys) before its own first write. `watched` as
-- finish_kept's: the job's 'w' when the caller read it, nil to read it here.
local function requeue(P, jk, id, jtype, due, now, watched)
  local f = redis.call('HMGET', jk, 'pr', 'lk')
  redis.call('HSET', jk, 's', 1, 'e', int(due), 'u', int(now))
  redis.call('HDEL', jk, 'l', 'd', 'n', 'g')
  local q = enqueue(P, jtype, f[1], due, id, f[2])
  redis.call('ZADD', P .. 'ts:1', 0, jtype)
  wake_for(P, jtype, id, due, now, q)
  if watched == nil then
    notify(P, jk, id)
  elseif watched then
    tell(P, id)
  end
end

-- A RUNNING job left its lease (settle, the sweep): its key's running count
-- drops, a key the claim set aside at its concurrency limit is due again
-- now, and a job of a concurrency-limited type (`gated`) wakes an idle
-- worker of the type for the freed slot, as an enqueue would. The caller
-- probed kn: and kr: of the type (slot_keys).
local function slot_freed(P, jtype, key, gated, now)
  if key then
    local kn = P .. 'kn:' .. jtype
    if redis.call('HINCRBY', kn, key, -1) <= 0 then
      redis.call('HDEL', kn, key)
    end
    redis.call('ZADD', P .. 'kr:' .. jtype, 'XX', 'LT', now, key)
  end
  if gated == '1' then
    wake(P, jtype)
  end
end

local function slot_keys(P, jtype)
  return {P .. 'kn:' .. jtype, P .. 'kr:' .. jtype, P .. 'w:' .. jtype}
end
