-- Store handlers' progress on their jobs, each only while its lease is held
-- (current token, deadline not passed by Redis's clock): a worker that lost
-- its lease cannot write over the new run's progress.
-- KEYS: tz of the shard (routes the call). ARGV: prefix, then per report:
-- id, token, fraction (0..1, checked by the caller), message.
-- Job hash fields: 'pg' the fraction, 'pm' the message; a change is a watch event.
-- Returns 1 per applied report, 0 per refused one.
local P = ARGV[1]
local now = clock_ms()
local out = {}
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  local jk = P .. 'j:' .. id
  local f = redis.call('HMGET', jk, 's', 'l', 'd')
  if f[1] == '2' and f[2] == ARGV[i + 1] and tonumber(f[3]) > now then
    redis.call('HSET', jk, 'pg', ARGV[i + 2], 'pm', ARGV[i + 3])
    notify(P, jk, id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
