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
-- limit LIMIT_POLL_MS from now (a settle wakes no one for a freed slot).
-- Returns {next_due, now, id, token, fields, id, token, fields, ...}; next_due
-- is the earliest due time among the types when nothing was claimed, else -1;
-- now is Redis's time, from which the leases' deadlines count.
-- A lease starts unconfirmed ('n'): its attempt is given back if it expires
-- before the worker's first renew or settle (see requeue.lua).
local P = ARGV[1]
local now = clock_ms()
local limit = tonumber(ARGV[2])
local deadline = now + tonumber(ARGV[3])
local base = ARGV[4]
local LIMIT_POLL_MS = 50
local active = {}
local paused = P .. 'pz'
local room = {} -- type -> what its limits let this claim start (absent: no limit)
local rated = {} -- type -> its rate window (ms), for recording starts
local held = {} -- type -> when a claim may start one of its jobs again
for i = 5, #ARGV do
  local jtype = ARGV[i]
  if redis.call('SISMEMBER', paused, jtype) == 0 then
    local lim = redis.call('HMGET', P .. 'lm:' .. jtype, 'c', 'rn', 'ri')
    local allowed = false
    if lim[1] then
      allowed = math.max(tonumber(lim[1]) - redis.call('ZCARD', P .. 'r:' .. jtype), 0)
      if allowed == 0 then
        held[jtype] = now + LIMIT_POLL_MS
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
while count < limit and #active > 0 do
  local still = {}
  -- An equal share per type per round: a flooded type cannot starve another.
  local share = math.ceil((limit - count) / #active)
  for _, jtype in ipairs(active) do
    local want = math.min(share, limit - count)
    if want <= 0 then
      break
    end
    -- Each priority's queue in turn, highest first (one queue without priorities).
    local cap = want
    if room[jtype] and room[jtype] < cap then
      cap = room[jtype]
    end
    local before = count
    local fetched = 0
    for _, q in ipairs(queues(P, jtype)) do
      if fetched >= cap then
        break
      end
      local ids = redis.call('ZRANGE', q, '-inf', now, 'BYSCORE', 'LIMIT', 0, cap - fetched)
      fetched = fetched + #ids
      if #ids > 0 then
        local r = P .. 'r:' .. jtype
        local keys = {r}
        -- Status and unique rule (uk key, uq "scope ..."), read before any write.
        local seen = {}
        for _, id in ipairs(ids) do
          local jk = P .. 'j:' .. id
          keys[#keys + 1] = jk
          local f = redis.call('HMGET', jk, 's', 'uk', 'uq')
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
        probe(keys)
        redis.call('ZREM', q, unpack(ids))
        prune_level(P, jtype, q)
        -- The sweep finds this type by its earliest deadline; listings by status.
        redis.call('ZADD', P .. 'lx', 'LT', deadline, jtype)
        redis.call('ZADD', P .. 'ts:2', 0, jtype)
        for _, id in ipairs(ids) do
          local jk = P .. 'j:' .. id
          local f = seen[id]
          if f[1] == '1' then
            -- A claim moves a PENDING or DEBOUNCE holder out of its key's scope.
            if f[2] and string.sub(f[3], 1, 1) ~= '2' then
              unlock(P, jtype, f[2], id)
            end
            count = count + 1
            local token = base .. count
            redis.call('HINCRBY', jk, 'a', 1)
            redis.call('HSET', jk, 's', 2, 'u', now, 'l', token, 'd', deadline, 'n', 1)
            redis.call('ZADD', r, deadline, id)
            notify(P, jk, id)
            if rated[jtype] then
              redis.call('ZADD', P .. 'rs:' .. jtype, now, token)
            end
            out[#out + 1] = id
            out[#out + 1] = token
            out[#out + 1] = redis.call('HGETALL', jk)
          end
        end
      end
    end
    if room[jtype] then
      room[jtype] = room[jtype] - (count - before)
    end
    if rated[jtype] and count > before then
      -- Starts older than the window no longer count: trim them, expire the rest.
      local rs = P .. 'rs:' .. jtype
      redis.call('ZREMRANGEBYSCORE', rs, '-inf', now - rated[jtype])
      redis.call('PEXPIRE', rs, rated[jtype] + 1000)
    end
    if fetched == want and room[jtype] ~= 0 then
      still[#still + 1] = jtype
    end
  end
  active = still
end
if count == 0 then
  local next_due = -1
  -- A held type matters only if it has a job due by then (an idle worker of an
  -- empty limited type must not poll).
  for jtype, free_at in pairs(held) do
    for _, q in ipairs(queues(P, jtype)) do
      local first = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
      if #first > 0 then
        local due = math.max(tonumber(first[2]), free_at)
        if next_due < 0 or due < next_due then
          next_due = due
        end
      end
    end
  end
  for _, jtype in ipairs(types) do
    for _, q in ipairs(queues(P, jtype)) do
      local first = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
      if #first > 0 then
        local due = tonumber(first[2])
        if next_due < 0 or due < next_due then
          next_due = due
        end
      end
    end
  end
  out[1] = next_due
else
  -- Work is left that this worker cannot take: wake another one.
  for _, jtype in ipairs(active) do
    for _, q in ipairs(queues(P, jtype)) do
      if #redis.call('ZRANGE', q, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1) > 0 then
        wake(P, jtype)
        break
      end
    end
  end
end
return out
