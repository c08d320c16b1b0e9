-- Counts per type, for at most `max_types` types by name after `after` (''
-- for the first), so one call holds Redis briefly whatever the number of
-- types; the store pages through the first 1,000 in such steps.
-- KEYS: tz, cfg of the shard. ARGV: prefix, max_types, after.
-- Returns {types holding jobs in all, type, pending, scheduled, running,
-- completed, failed, cancelled, oldest pending age ms, ...}: the age is how
-- long the earliest due job has waited by Redis's clock, 0 when none is due.
local P = ARGV[1]
local max_types = tonumber(ARGV[2])
local now = clock_ms()
local retention = config(P)
local since = '(' .. (now - retention)
local from = '-'
if ARGV[3] ~= '' then
  from = '(' .. ARGV[3]
end
local types = redis.call('ZRANGE', KEYS[1], from, '+', 'BYLEX', 'LIMIT', 0, max_types)
local out = {redis.call('ZCARD', KEYS[1])}
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
  local head = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
  local age = 0
  if due > 0 and #head > 0 then
    age = now - tonumber(head[2])
  end
  out[#out + 1] = age
end
return out
