-- Unpaused schedules whose next tick has come by Redis's clock.
-- KEYS: sx. ARGV: prefix, limit.
-- Returns Redis's now, then per schedule its id and its fields.
local P = ARGV[1]
local now = clock_ms()
local out = {now}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, int(tonumber(ARGV[2])))) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', P .. 'sc:' .. id)
end
return out
