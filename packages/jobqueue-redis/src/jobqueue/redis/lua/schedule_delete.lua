-- Forget a schedule; the jobs it enqueued stay.
-- KEYS: sa, sx, sc:<id>. ARGV: id, prefix. Returns 1 if it existed.
-- Its create's idempotency key (sk:<type>/<key>, same shard) goes with it if
-- it still names it: a later create with that key creates anew.
local f = redis.call('HMGET', KEYS[3], 'ty', 'ik')
local kk = f[2] and (ARGV[2] .. 'sk:' .. f[1] .. '/' .. f[2])
if kk then
  probe({KEYS[1], KEYS[2], KEYS[3], kk})
  if redis.call('GET', kk) == ARGV[1] then
    redis.call('DEL', kk)
  end
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[3])
