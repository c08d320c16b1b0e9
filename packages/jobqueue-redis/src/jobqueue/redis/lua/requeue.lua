-- Hand back jobs whose lease deadline passed, and forget finished jobs whose
-- retention ran out. KEYS[1] the set of known types.
-- ARGV: prefix, retention_ms, limit, default_max_attempts, max_unconfirmed.
-- Returns how many leases expired.
local P = ARGV[1]
local now = clock_ms()
local retention = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local default_max = tonumber(ARGV[4])
local max_unconfirmed = tonumber(ARGV[5])
local count = 0
for _, jtype in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if count < limit then
    local r = P .. 'r:' .. jtype
    local ids = redis.call('ZRANGE', r, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit - count)
    for _, id in ipairs(ids) do
      count = count + 1
      redis.call('ZREM', r, id)
      local jk = P .. 'j:' .. id
      local f = redis.call('HMGET', jk, 'a', 'm', 'x', 'n', 'z')
      local max_attempts = tonumber(f[2]) or default_max
      if f[3] == '1' then
        finish(P, jk, id, jtype, 5, now, retention)
      elseif f[4] and (tonumber(f[5]) or 0) < max_unconfirmed then
        -- Never confirmed: the claim's reply may never have reached a worker,
        -- so the job may never have run. Give the attempt back.
        redis.call('HINCRBY', jk, 'a', -1)
        redis.call('HINCRBY', jk, 'z', 1)
        requeue(P, jk, id, jtype, now, now)
      elseif (tonumber(f[1]) or 0) >= max_attempts then
        -- The worker died on every attempt: stop feeding it to workers.
        redis.call('HSET', jk, 'err', 'lease expired on the last attempt')
        finish(P, jk, id, jtype, 4, now, retention)
      else
        requeue(P, jk, id, jtype, now, now)
      end
    end
  end
  for status = 3, 5 do
    redis.call('ZREMRANGEBYSCORE', P .. 'd:' .. jtype .. ':' .. status, '-inf', now - retention)
  end
end
return count
