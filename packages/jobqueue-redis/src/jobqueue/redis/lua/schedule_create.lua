-- Store a new schedule (jobqueue/redis/_schedules.py).
-- KEYS: sa (every schedule of the shard), sx (unpaused schedules by next tick), sc:<id>,
-- and with an idempotency key sk:<type>/<key> (the key -> the schedule it created).
-- ARGV: prefix, id, paused ('1' or '0'), idempotency key ('' for none), the key's
-- lifetime in ms, then the schedule's field/value pairs.
-- Created and anchored at Redis's now; unplanned (due at once for planning) unless paused.
-- Returns {id, now}: the id of an earlier schedule when the key names one that
-- still exists (a retried create: nothing is written), else ARGV[2].
local now = clock_ms()
local P, id, key = ARGV[1], ARGV[2], ARGV[4]
if key ~= '' then
  local prior = redis.call('GET', KEYS[4])
  if prior and redis.call('EXISTS', P .. 'sc:' .. prior) == 1 then
    return {prior, now}
  end
  probe({KEYS[1], KEYS[2], KEYS[3], KEYS[4]})
else
  probe({KEYS[1], KEYS[2], KEYS[3]})
end
local fields = {'ca', int(now), 'an', int(now), 'v', 0, 'pa', ARGV[3], 'fi', 0, 'so', 0, 'mi', 0}
for i = 6, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], unpack(fields))
if key ~= '' then
  -- The schedule remembers its key, so deleting it forgets the key too.
  redis.call('HSET', KEYS[3], 'ik', key)
  redis.call('SET', KEYS[4], id, 'PX', ARGV[5])
end
redis.call('ZADD', KEYS[1], 0, id)
if ARGV[3] ~= '1' then
  redis.call('ZADD', KEYS[2], 0, id)
end
return {id, now}
