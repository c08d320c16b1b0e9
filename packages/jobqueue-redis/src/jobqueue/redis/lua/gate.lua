-- Pause or resume a job type (claim.lua skips every type in pz), or set its limits.
-- KEYS: pz of the type's shard. ARGV: prefix, type, '1' to pause | '0' to resume
-- | 'l' to set limits, then concurrency|'' rate|'' rate_interval_ms ('' '' to clear),
-- key_concurrency|'' key_rate|'' key_rate_interval_ms (per limit key, see claim.lua).
-- Field kx (the type has keyed jobs, set by enqueue_keyed) is kept, and up to
-- UNPARK keys the claim set aside (kr: scores past now: at a per-key limit,
-- or waiting for a later head) are due again now, so new per-key limits
-- apply to them at the next claim (one that is still held is set aside again).
-- Returns 1 when it changed something, 0 when the type already was so.
-- Resuming, or setting limits, wakes an idle worker of the type when a job of
-- it is due, so its backlog starts within a round trip, not at a worker's next poll.
local P = ARGV[1]
local jtype = ARGV[2]
local UNPARK = 1000
if ARGV[3] == 'l' then
  local lk = P .. 'lm:' .. jtype
  local ring = P .. 'kr:' .. jtype
  probe({lk, P .. 'w:' .. jtype, ring})
  local now = clock_ms()
  local parked = redis.call('ZRANGE', ring, '(' .. (now + 1), '+inf', 'BYSCORE', 'LIMIT', 0, UNPARK)
  for _, key in ipairs(parked) do
    redis.call('ZADD', ring, now, key)
  end
  redis.call('HDEL', lk, 'c', 'rn', 'ri', 'kc', 'kn', 'ki')
  local fields = {}
  if ARGV[4] ~= '' then
    fields[#fields + 1] = 'c'
    fields[#fields + 1] = ARGV[4]
  end
  if ARGV[5] ~= '' then
    fields[#fields + 1] = 'rn'
    fields[#fields + 1] = ARGV[5]
    fields[#fields + 1] = 'ri'
    fields[#fields + 1] = ARGV[6]
  end
  if ARGV[7] ~= '' then
    fields[#fields + 1] = 'kc'
    fields[#fields + 1] = ARGV[7]
  end
  if ARGV[8] ~= '' then
    fields[#fields + 1] = 'kn'
    fields[#fields + 1] = ARGV[8]
    fields[#fields + 1] = 'ki'
    fields[#fields + 1] = ARGV[9]
  end
  if #fields > 0 then
    redis.call('HSET', lk, unpack(fields))
  end
  wake(P, jtype)
  return 1
end
if ARGV[3] == '1' then
  return redis.call('SADD', KEYS[1], jtype)
end
local changed = redis.call('SREM', KEYS[1], jtype)
if changed == 1 then
  probe({P .. 'w:' .. jtype})
  local now = clock_ms()
  for _, q in ipairs(all_queues(P, jtype)) do
    if #redis.call('ZRANGE', q, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1) > 0 then
      wake(P, jtype)
      break
    end
  end
end
return changed
