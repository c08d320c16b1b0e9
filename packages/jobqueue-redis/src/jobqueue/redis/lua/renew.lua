-- Extend leases that are still held. KEYS: tz, lx of the shard.
-- ARGV: prefix, lease_ms, then id, token pairs.
-- Returns per lease: 1 active, 2 cancel requested, 0 lost (stale token, or a
-- deadline already passed by Redis's clock: such a lease changes nothing, even
-- before the sweeper hands its job back). A renew confirms the lease's attempt.
local P = ARGV[1]
local now = clock_ms()
local deadline = now + tonumber(ARGV[2])
local deadline_s = int(deadline) -- as the job hash stores it (see int)
local out = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = P .. 'j:' .. id
  local f = redis.call('HMGET', jk, 's', 'l', 'd', 't', 'x', 'n')
  if f[1] ~= '2' or f[2] ~= token or tonumber(f[3]) <= now then
    out[#out + 1] = 0
  else
    probe({P .. 'r:' .. f[4]})
    redis.call('HSET', jk, 'd', deadline_s)
    if f[6] then
      redis.call('HDEL', jk, 'n', 'z')
    end
    redis.call('ZADD', P .. 'r:' .. f[4], 'XX', deadline, id)
    -- A renew may shorten a lease: the type's entry in lx stays a lower bound.
    redis.call('ZADD', KEYS[2], 'LT', deadline, f[4])
    if f[5] == '1' then
      out[#out + 1] = 2
    else
      out[#out + 1] = 1
    end
  end
end
return out
