-- Lease up to `limit` due jobs of the given types, in turns across types.
-- KEYS: tz, lx, ts:2 of the shard. ARGV: prefix, limit, lease_ms, token_base, types...
-- A type in pz (paused, see gate.lua) is skipped: its jobs stay PENDING. pz is
-- built from P, not declared: a declared key that does not exist (no type
-- paused) would make a claim during a reshard fail with ASK, not run.
-- Within a type, the queues of its priorities highest first (see queues in
-- _common.lua); across types, equal shares whatever the priorities.
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
local active = {}
local paused = P .. 'pz'
for i = 5, #ARGV do
  if redis.call('SISMEMBER', paused, ARGV[i]) == 0 then
    active[#active + 1] = ARGV[i]
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
    local fetched = 0
    for _, q in ipairs(queues(P, jtype)) do
      if fetched >= want then
        break
      end
      local ids = redis.call('ZRANGE', q, '-inf', now, 'BYSCORE', 'LIMIT', 0, want - fetched)
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
            keys[#keys + 1] = P .. 'u:' .. f[2]
          end
        end
        if q ~= P .. 'q:' .. jtype then
          keys[#keys + 1] = P .. 'pl:' .. jtype
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
              unlock(P, f[2], id)
            end
            count = count + 1
            local token = base .. count
            redis.call('HINCRBY', jk, 'a', 1)
            redis.call('HSET', jk, 's', 2, 'u', now, 'l', token, 'd', deadline, 'n', 1)
            redis.call('ZADD', r, deadline, id)
            notify(P, jk, id)
            out[#out + 1] = id
            out[#out + 1] = token
            out[#out + 1] = redis.call('HGETALL', jk)
          end
        end
      end
    end
    if fetched == want then
      still[#still + 1] = jtype
    end
  end
  active = still
end
if count == 0 then
  local next_due = -1
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
