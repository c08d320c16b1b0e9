-- Counts per type. KEYS[1] the set of known types. ARGV: prefix, retention_ms.
-- Returns {type, pending, scheduled, running, completed, failed, cancelled, ...}.
local P = ARGV[1]
local now = clock_ms()
local since = '(' .. (now - tonumber(ARGV[2]))
local out = {}
for _, jtype in ipairs(redis.call('SMEMBERS', KEYS[1])) do
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
