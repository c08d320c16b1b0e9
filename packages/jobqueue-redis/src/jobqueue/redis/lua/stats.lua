-- Counts per type, for at most `max_types` types (the first by name among the
-- types that hold jobs), so one call costs the same with 100,000 types.
-- KEYS: tz, cfg of the shard. ARGV: prefix, max_types.
-- Returns {omitted, type, pending, scheduled, running, completed, failed, cancelled, ...}:
-- omitted is how many more types hold jobs.
local P = ARGV[1]
local max_types = tonumber(ARGV[2])
local now = clock_ms()
local retention = config(P)
local since = '(' .. (now - retention)
local types = redis.call('ZRANGE', KEYS[1], '-', '+', 'BYLEX', 'LIMIT', 0, max_types)
local out = {redis.call('ZCARD', KEYS[1]) - #types}
for _, jtype in ipairs(types) do
  local q = P .. 'q:' .. jtype
  local due = redis.call('ZCOUNT', q, '-inf', now)
  out[#out + 1] = jtype
  out[#out + 1] = due
  out[#out + 1] = redis.call('ZCARD', q) - due
  out[#out + 1] = redis.call('ZCARD', P .. 'r:' .. jtype)
  for status = 3, 5 do
    out[#out + 1] = redis.call('ZCOUNT', P .. 'd:' .. jtype .. ':' .. status, since, '+inf')
  end
end
return out
