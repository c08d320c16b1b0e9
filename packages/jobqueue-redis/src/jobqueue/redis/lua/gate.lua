-- Pause or resume a job type: claim.lua skips every type in pz.
-- KEYS: pz of the type's shard. ARGV: prefix, type, '1' to pause | '0' to resume.
-- Returns 1 when it changed something, 0 when the type already was so.
-- Resuming wakes an idle worker of the type when a job of it is due, so the
-- type's backlog starts within a round trip instead of at a worker's next poll.
local P = ARGV[1]
local jtype = ARGV[2]
if ARGV[3] == '1' then
  return redis.call('SADD', KEYS[1], jtype)
end
local changed = redis.call('SREM', KEYS[1], jtype)
if changed == 1 then
  probe({P .. 'w:' .. jtype})
  local now = clock_ms()
  for _, q in ipairs(queues(P, jtype)) do
    if #redis.call('ZRANGE', q, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1) > 0 then
      wake(P, jtype)
      break
    end
  end
end
return changed
