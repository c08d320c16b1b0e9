-- Extend leases. ARGV: prefix, now, lease_ms, then id, token pairs.
-- Returns per lease: 1 active, 2 cancel requested, 0 lost.
local P = ARGV[1]
local deadline = tonumber(ARGV[2]) + tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = P .. 'j:' .. id
  local f = redis.call('HMGET', jk, 's', 'l', 't', 'x')
  if f[1] ~= '2' or f[2] ~= token then
    out[#out + 1] = 0
  else
    redis.call('HSET', jk, 'd', deadline)
    redis.call('ZADD', P .. 'r:' .. f[3], 'XX', deadline, id)
    if f[4] == '1' then
      out[#out + 1] = 2
    else
      out[#out + 1] = 1
    end
  end
end
return out
