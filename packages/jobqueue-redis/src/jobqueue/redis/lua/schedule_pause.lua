-- Pause or resume a schedule.
-- KEYS: sx, sc:<id>. ARGV: id, '1' to pause or '0' to resume.
-- A resume re-anchors at Redis's now and forgets the last tick: ticks that
-- fell while paused never fire. Returns the schedule's fields, or false.
local sk = KEYS[2]
local state = redis.call('HGET', sk, 'pa')
if not state then
  return false
end
if state ~= ARGV[2] then
  redis.call('HINCRBY', sk, 'v', 1)
  if ARGV[2] == '1' then
    redis.call('HSET', sk, 'pa', 1)
    redis.call('ZREM', KEYS[1], ARGV[1])
  else
    redis.call('HSET', sk, 'pa', 0, 'an', int(clock_ms()))
    redis.call('HDEL', sk, 'lt', 'nx')
    redis.call('ZADD', KEYS[1], 0, ARGV[1])
  end
end
return redis.call('HGETALL', sk)
