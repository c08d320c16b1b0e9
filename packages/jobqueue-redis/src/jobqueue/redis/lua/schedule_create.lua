-- Store a new schedule (jobqueue/redis/_schedules.py).
-- KEYS: sa (every schedule of the shard), sx (unpaused schedules by next tick), sc:<id>.
-- ARGV: id, paused ('1' or '0'), then the schedule's field/value pairs.
-- Created and anchored at Redis's now; unplanned (due at once for planning) unless paused.
local now = clock_ms()
local id = ARGV[1]
local fields = {'ca', now, 'an', now, 'v', 0, 'pa', ARGV[2], 'fi', 0, 'so', 0, 'mi', 0}
for i = 3, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], unpack(fields))
redis.call('ZADD', KEYS[1], 0, id)
if ARGV[2] ~= '1' then
  redis.call('ZADD', KEYS[2], 0, id)
end
return now
