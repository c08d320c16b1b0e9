-- Hand back jobs whose lease deadline passed, and forget finished jobs whose
-- retention ran out. KEYS[1] the set of known types.
-- ARGV: prefix, now, retention_ms, limit, default_max_attempts.
-- Returns how many leases expired.
local P = ARGV[1]
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local default_max = tonumber(ARGV[5])
local count = 0
for _, jtype in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if count < limit then
    local r = P .. 'r:' .. jtype
    local ids = redis.call('ZRANGE', r, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit - count)
    for _, id in ipairs(ids) do
      count = count + 1
      redis.call('ZREM', r, id)
      local jk = P .. 'j:' .. id
      local f = redis.call('HMGET', jk, 'a', 'm', 'x')
      local max_attempts = tonumber(f[2]) or default_max
      if f[3] == '1' then
        finish(P, jk, id, jtype, 5, now, retention)
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
