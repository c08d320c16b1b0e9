-- Lease up to `limit` due jobs of the given types, in turns across types.
-- KEYS: tz, lx, ts:2 of the shard. ARGV: prefix, limit, lease_ms, token_base, types...
-- A type in pz (paused, see gate.lua) is skipped: its jobs stay PENDING. pz is
-- built from P, not declared: a declared key that does not exist (no type
-- paused) would make a claim during a reshard fail with ASK, not run.
-- Within a type, the queues of its priorities highest first (see queues in
-- _common.lua); across types, equal shares whatever the priorities.
-- A type's limits ('lm:' .. type: c concurrency, rn starts per ri ms, see
-- gate.lua) cap what this claim leases of it: c minus its RUNNING jobs
-- ('r:' .. type, expired leases counted until swept), rn minus its starts in
-- the window ('rs:' .. type, scored by start time). A limited job is simply
-- not claimed. When nothing was claimed, a type held by its rate limit is
-- due when its oldest start leaves the window, one held by its concurrency
-- limit the safety poll from now (cfg limit_poll_ms, 1 s by default): a
-- settle of a job of a concurrency-limited type wakes an idle worker (its
-- lease carries 'g', see slot_freed), so the poll only covers a lost wake.
-- A type with keyed jobs (lm: kx, see enqueue_keyed) is served by turns
-- across its ring of keys (take_keyed below), its per-key limits (lm: kc, kn
-- per ki ms) checked per key.
-- Returns {next_due, now, id, token, fields, id, token, fields, ...}; next_due
-- is the earliest due time among the types when nothing was claimed, else -1;
-- now is Redis's time, from which the leases' deadlines count.
-- A lease starts unconfirmed ('n'): its attempt is given back if it expires
-- before the worker's first renew or settle (see requeue.lua).
local P = ARGV[1]
local now = clock_ms()
local limit = tonumber(ARGV[2])
local deadline = now + tonumber(ARGV[3])
-- `now` and `deadline` as the job hashes store them (see int).
local now_s, deadline_s = int(now), int(deadline)
local base = ARGV[4]
local DEFAULT_LIMIT_POLL_MS = 1000
-- Keys of one type a claim visits at most beyond one per job it takes: a key
-- at its limit is set aside (re-scored past now), so the next claim does not
-- visit it again; a claim that reaches the bound reports work due now.
local KEY_VISITS = 64
local poll = false
-- 'cfg' is a fixed key of the shard read here undeclared, as 'pz' (see the
-- header): a declared key that does not exist yet answers ASK while a slot
-- migrates, and a prefix with no settings has no 'cfg'.
local function poll_ms()
  if not poll then
    poll = tonumber(redis.call('HGET', P .. 'cfg', 'limit_poll_ms')) or DEFAULT_LIMIT_POLL_MS
  end
  return poll
end
local active = {}
local paused = P .. 'pz'
local room = {} -- type -> what its limits let this claim start (absent: no limit)
local rated = {} -- type -> its rate window (ms), for recording starts
local held = {} -- type -> when a claim may start one of its jobs again
local keyed = {} -- type with keyed jobs -> its per-key limits {c, n, i} (each may be false)
local gated = {} -- type -> true when its leases carry 'g' (a concurrency limit)
local busy = false -- a claim that reached KEY_VISITS: work may be due now
for i = 5, #ARGV do
  local jtype = ARGV[i]
  if redis.call('SISMEMBER', paused, jtype) == 0 then
    local lim = redis.call('HMGET', P .. 'lm:' .. jtype, 'c', 'rn', 'ri', 'kx', 'kc', 'kn', 'ki')
    local allowed = false
    if lim[4] then
      keyed[jtype] = {c = tonumber(lim[5]), n = tonumber(lim[6]), i = tonumber(lim[7])}
    end
    if lim[1] or lim[5] then
      gated[jtype] = true
    end
    if lim[1] then
      allowed = math.max(tonumber(lim[1]) - redis.call('ZCARD', P .. 'r:' .. jtype), 0)
      if allowed == 0 then
        held[jtype] = now + poll_ms()
      end
    end
    if lim[2] then
      local window = tonumber(lim[3])
      rated[jtype] = window
      local rs = P .. 'rs:' .. jtype
      local by_rate = math.max(
        tonumber(lim[2]) - redis.call('ZCOUNT', rs, '(' .. (now - window), '+inf'), 0)
      if by_rate == 0 then
        local oldest = redis.call('ZRANGE', rs, '(' .. (now - window), '+inf', 'BYSCORE',
          'LIMIT', 0, 1, 'WITHSCORES')
        local free_at = tonumber(oldest[2]) + window
        if not held[jtype] or free_at > held[jtype] then
          held[jtype] = free_at
        end
      end
      if not allowed or by_rate < allowed then
        allowed = by_rate
      end
    end
    if allowed then
      room[jtype] = allowed
    end
    if allowed ~= 0 then
      active[#active + 1] = jtype
    end
  end
end
local types = active
local out = {-1, now}
local count = 0

-- Lease `ids`, taken from queue `q` (already removed from it): those still
-- PENDING become RUNNING under a fresh token. `extra` lists keys the caller
-- writes beside (probed with the rest), `lkey` the limit key of a keyed job.
local function lease(jtype, q, ids, extra, lkey)
  local r = P .. 'r:' .. jtype
  local keys = {r}
  -- Status, unique rule (uk key, uq "scope ..."), attempts and watchers,
  -- read before any write: the lease writes the attempt with its other
  -- fields, and tells watchers, without a command more per job.
  local seen = {}
  for _, id in ipairs(ids) do
    local jk = P .. 'j:' .. id
    keys[#keys + 1] = jk
    local f = redis.call('HMGET', jk, 's', 'uk', 'uq', 'a', 'w')
    seen[id] = f
    if f[2] then
      keys[#keys + 1] = ukey(P, jtype, f[2])
    end
  end
  if q ~= P .. 'q:' .. jtype then
    keys[#keys + 1] = P .. 'pl:' .. jtype
  end
  if rated[jtype] then
    keys[#keys + 1] = P .. 'rs:' .. jtype
  end
  for _, key in ipairs(extra) do
    keys[#keys + 1] = key
  end
  probe(keys)
  redis.call('ZREM', q, unpack(ids))
  if lkey then
    redis.call('ZREM', P .. 'qk:' .. jtype, unpack(ids))
  else
    prune_level(P, jtype, q)
  end
  -- The sweep finds this type by its earliest deadline; listings by status.
  redis.call('ZADD', P .. 'lx', 'LT', deadline, jtype)
  redis.call('ZADD', P .. 'ts:2', 0, jtype)
  local taken = 0
  for _, id in ipairs(ids) do
    local jk = P .. 'j:' .. id
    local f = seen[id]
    if f[1] == '1' then
      -- A claim moves a PENDING or DEBOUNCE holder out of its key's scope.
      if f[2] and string.sub(f[3], 1, 1) ~= '2' then
        unlock(P, jtype, f[2], id)
      end
      count = count + 1
      taken = taken + 1
      local token = base .. count
      local attempt = (tonumber(f[4]) or 0) + 1
      if gated[jtype] then
        redis.call('HSET', jk, 's', 2, 'u', now_s, 'l', token, 'd', deadline_s, 'n', 1, 'a',
          attempt, 'g', 1)
      else
        redis.call('HSET', jk, 's', 2, 'u', now_s, 'l', token, 'd', deadline_s, 'n', 1, 'a',
          attempt)
      end
      redis.call('ZADD', r, deadline, id)
      if f[5] then
        tell(P, id)
      end
      if rated[jtype] then
        redis.call('ZADD', P .. 'rs:' .. jtype, now, token)
      end
      if lkey then
        redis.call('HINCRBY', P .. 'kn:' .. jtype, lkey, 1)
        local lim = keyed[jtype]
        if lim.n then
          local ks = P .. 'ks:' .. jtype .. '/' .. lkey
          local window = lim.i or 1000
          redis.call('ZADD', ks, now, token)
          redis.call('ZREMRANGEBYSCORE', ks, '-inf', now - window)
          redis.call('PEXPIRE', ks, int(window + 1000))
        end
      end
      out[#out + 1] = id
      out[#out + 1] = token
      out[#out + 1] = redis.call('HGETALL', jk)
    end
  end
  return taken
end

-- Up to `cap` due jobs without a key, each priority's queue in turn, highest
-- first (one queue without priorities). Returns how many it fetched.
local function take_plain(jtype, cap)
  local fetched = 0
  for _, q in ipairs(queues(P, jtype)) do
    if fetched >= cap then
      break
    end
    local ids = redis.call('ZRANGE', q, '-inf', now, 'BYSCORE', 'LIMIT', 0, int(cap - fetched))
    fetched = fetched + #ids
    if #ids > 0 then
      lease(jtype, q, ids, {})
    end
  end
  return fetched
end

-- A key held by its per-key concurrency is set aside this long (a safety
-- bound, not a poll): only a settle or the sweep lowers its 'kn:' count, and
-- both re-score the key to now (slot_freed), as gate.lua's unpark does; a
-- short hold would make every held key due again at once, and claims churn.
local KEY_PARK_MS = 600000
-- When a key's per-key limits hold it (the time they free it), or false.
local function key_hold(jtype, key)
  local lim = keyed[jtype]
  if lim.c and (tonumber(redis.call('HGET', P .. 'kn:' .. jtype, key)) or 0) >= lim.c then
    return now + KEY_PARK_MS
  end
  if lim.n then
    local window = lim.i or 1000
    local ks = P .. 'ks:' .. jtype .. '/' .. key
    if redis.call('ZCOUNT', ks, '(' .. (now - window), '+inf') >= lim.n then
      local oldest = redis.call('ZRANGE', ks, '(' .. (now - window), '+inf', 'BYSCORE',
        'LIMIT', 0, 1, 'WITHSCORES')
      return tonumber(oldest[2]) + window
    end
  end
  return false
end

-- Up to `cap` jobs of a type with keyed jobs, by turns: the ring's keys due
-- now, least recently served first, one job per key per turn ('' is the lane
-- of the jobs without a key). A served key goes to the back of the ring: its
-- score becomes just past the highest due score (STEP, a binary fraction of a
-- ms, so turns never tie within a millisecond; a key counts as due below
-- now + 1, and every other score is a whole ms), or its next job's due time;
-- a key at its limit is set aside until it frees; a key with nothing due
-- waits for its head; an empty one leaves. At most cap + KEY_VISITS visits.
-- Returns how many it took.
local STEP = 1 / 1024
local function take_keyed(jtype, cap)
  local ring = P .. 'kr:' .. jtype
  probe({ring, P .. 'qk:' .. jtype, P .. 'kn:' .. jtype, P .. 'lm:' .. jtype})
  local due_below = '(' .. (now + 1)
  local last = now
  local tail = redis.call('ZRANGE', ring, due_below, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1,
    'WITHSCORES')
  if #tail > 0 and tonumber(tail[2]) > last then
    last = tonumber(tail[2])
  end
  local function back()
    last = last + STEP
    return last
  end
  local got, visits = 0, 0
  local bound = cap + KEY_VISITS
  while got < cap and visits < bound do
    -- One more than it needs: the '' lane may have nothing due.
    local turn = redis.call('ZRANGE', ring, '-inf', due_below, 'BYSCORE', 'LIMIT', 0,
      int(math.min(cap - got + 1, bound - visits)))
    if #turn == 0 then
      break
    end
    -- Visits that took a job or moved a key out of this claim's reach (set
    -- aside, waiting for its head, gone): a pass with none has nothing left.
    local moved = 0
    for _, key in ipairs(turn) do
      if got >= cap then
        break
      end
      visits = visits + 1
      if key == '' then
        local n = take_plain(jtype, 1)
        got = got + n
        moved = moved + n
        -- The lane stays while the ring lives. Like a key, it goes to the back
        -- only when served: a visit that found nothing due keeps its place.
        if n > 0 then
          redis.call('ZADD', ring, back(), '')
        end
      else
        local kq = P .. 'kq:' .. jtype .. '/' .. key
        local hold = key_hold(jtype, key)
        moved = moved + 1
        if hold then
          redis.call('ZADD', ring, hold, key)
        else
          local ids = redis.call('ZRANGE', kq, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1)
          local n = 0
          if #ids > 0 then
            n = lease(jtype, kq, ids, {kq, P .. 'ks:' .. jtype .. '/' .. key}, key)
            got = got + n
          end
          local head = redis.call('ZRANGE', kq, 0, 0, 'WITHSCORES')
          if #head == 0 then
            redis.call('ZREM', ring, key)
          else
            local next_due = tonumber(head[2])
            if n > 0 or next_due <= now then
              next_due = math.max(back(), next_due)
            end
            redis.call('ZADD', ring, next_due, key)
          end
        end
      end
    end
    if moved == 0 then
      break
    end
  end
  if visits >= bound then
    busy = true
  end
  -- No keyed job left: the type is plain again (what is left in the ring is stale).
  if redis.call('EXISTS', P .. 'qk:' .. jtype) == 0 then
    redis.call('DEL', ring)
    redis.call('HDEL', P .. 'lm:' .. jtype, 'kx')
    -- Plain from here on, in this claim too: its next rounds (and what this
    -- turn left of its cap) take from the queues, not from a ring now gone.
    keyed[jtype] = nil
    if got < cap then
      got = got + take_plain(jtype, cap - got)
    end
  end
  return got
end

while count < limit and #active > 0 do
  local still = {}
  -- An equal share per type per round: a flooded type cannot starve another.
  local share = math.ceil((limit - count) / #active)
  for _, jtype in ipairs(active) do
    local want = math.min(share, limit - count)
    if want <= 0 then
      break
    end
    local cap = want
    if room[jtype] and room[jtype] < cap then
      cap = room[jtype]
    end
    local before = count
    local fetched
    if keyed[jtype] then
      fetched = take_keyed(jtype, cap)
    else
      fetched = take_plain(jtype, cap)
    end
    if room[jtype] then
      room[jtype] = room[jtype] - (count - before)
    end
    if rated[jtype] and count > before then
      -- Starts older than the window no longer count: trim them, expire the rest.
      local rs = P .. 'rs:' .. jtype
      redis.call('ZREMRANGEBYSCORE', rs, '-inf', now - rated[jtype])
      redis.call('PEXPIRE', rs, int(rated[jtype] + 1000))
    end
    if fetched == want and room[jtype] ~= 0 then
      still[#still + 1] = jtype
    end
  end
  active = still
end
-- The due times of a type's heads: each priority's queue, and the ring's
-- first key (not the '' lane, which the queues cover) for a type with keys.
local function heads(jtype)
  local out_heads = {}
  for _, q in ipairs(queues(P, jtype)) do
    local first = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
    if #first > 0 then
      out_heads[#out_heads + 1] = tonumber(first[2])
    end
  end
  if keyed[jtype] then
    local first = redis.call('ZRANGE', P .. 'kr:' .. jtype, 0, 1, 'WITHSCORES')
    for i = 1, #first, 2 do
      if first[i] ~= '' then
        out_heads[#out_heads + 1] = tonumber(first[i + 1])
        break
      end
    end
  end
  return out_heads
end

if count == 0 then
  local next_due = -1
  local function consider(due)
    if next_due < 0 or due < next_due then
      next_due = due
    end
  end
  -- A held type matters only if it has a job due by then (an idle worker of an
  -- empty limited type must not poll).
  for jtype, free_at in pairs(held) do
    for _, due in ipairs(heads(jtype)) do
      consider(math.max(due, free_at))
    end
  end
  for _, jtype in ipairs(types) do
    for _, due in ipairs(heads(jtype)) do
      consider(due)
    end
  end
  if busy then
    consider(now)
  end
  out[1] = next_due
else
  -- Work is left that this worker cannot take: wake another one.
  for _, jtype in ipairs(active) do
    local due = busy
    for _, head in ipairs(heads(jtype)) do
      if head < now + 1 then
        due = true
      end
    end
    if due then
      wake(P, jtype)
    end
  end
end
return out
