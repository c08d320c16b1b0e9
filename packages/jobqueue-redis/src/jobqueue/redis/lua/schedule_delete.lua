-- Forget a schedule; the jobs it enqueued stay.
-- KEYS: sa, sx, sc:<id>. ARGV: id. Returns 1 if it existed.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[3])
