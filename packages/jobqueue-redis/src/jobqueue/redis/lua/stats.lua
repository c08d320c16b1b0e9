-- Counts per type, for at most `max_types` types by name after `after` (''
-- for the first), so one call holds Redis briefly whatever the number of
-- types; the store pages through the first 1,000 in such steps.
-- KEYS: tz, cfg of the shard. ARGV: prefix, max_types, after.
-- Returns {types holding jobs in all, type, pending, scheduled, running,
-- completed, failed, cancelled, oldest pending age ms, ...}: the age is how
-- long the earliest due job has waited by Redis's clock, 0 when none is due,
-- counted from the later of its due time and its creation: a job enqueued
-- with a due time years back has waited only since it was made. (Only each
-- queue's head is read, so a backdated head hides an older job behind it.)
local P = ARGV[1]
local max_types = tonumber(ARGV[2])
local now = clock_ms()
local retention = config(P)
local since = '(' .. (now - retention)
local from = '-'
if ARGV[3] ~= '' then
  from = '(' .. ARGV[3]
end
local types = redis.call('ZRANGE', KEYS[1], from, '+', 'BYLEX', 'LIMIT', 0, int(max_types))
local out = {redis.call('ZCARD', KEYS[1])}
for _, jtype in ipairs(types) do
  -- Every priority's queue (one without priorities).
  local due, held, oldest = 0, 0, false
  for _, q in ipairs(all_queues(P, jtype)) do
    local n = redis.call('ZCOUNT', q, '-inf', now)
    due = due + n
    held = held + redis.call('ZCARD', q)
    if n > 0 then
      local head = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
      local waited_from = tonumber(head[2])
      local made = tonumber(redis.call('HGET', P .. 'j:' .. head[1], 'c'))
      if made and made > waited_from then
        waited_from = made
      end
      if not oldest or waited_from < oldest then
        oldest = waited_from
      end
    end
  end
  out[#out + 1] = jtype
  out[#out + 1] = due
  out[#out + 1] = held - due
  out[#out + 1] = redis.call('ZCARD', P .. 'r:' .. jtype)
  for status = 3, 5 do
    out[#out + 1] = redis.call('ZCOUNT', P .. 'd:' .. jtype .. ':' .. status, since, '+inf')
  end
  local age = 0
  if oldest then
    age = now - oldest
  end
  out[#out + 1] = age
end
return out
