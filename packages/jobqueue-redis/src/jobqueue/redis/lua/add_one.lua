-- Store ONE plain new PENDING job: add.lua's effects for a job with no
-- idempotency key, unique rule, headers, priority or limit key, in a call
-- without a batch key (_enqueue.py sends only such a call here).
-- KEYS: tz, cfg, ts:1, ct of the shard, as add.lua's (KEYS[1] routes the call).
-- ARGV: prefix, id, type, execution_time|'-' ('-': due at Redis's now),
-- max_attempts|'', payload. Returns {now, id}, as add.lua does.
-- Why a script of its own: add.lua's general planner (options, unique keys,
-- batches, per-type tables) costs a lone plain job about as much Redis time as
-- its writes do; this one writes the same fields, queue, indexes, counter and
-- wake-up with nothing else, through the same helpers (clock_ms, count, wake_for).
local P, id, jtype, exec, max_attempts = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = clock_ms()
local stamp = int(now) -- `now` as the job hash stores it (see int)
local jk = P .. 'j:' .. id
local q = P .. 'q:' .. jtype
if PROBE then -- a cluster's only (see probe in _common.lua): the keys add.lua probes
  probe({jk, q, P .. 'pl:' .. jtype, P .. 'w:' .. jtype})
end
if exec == '-' then
  exec = stamp
end
if max_attempts ~= '' then
  redis.call('HSET', jk, 't', jtype, 'p', ARGV[6], 's', 1, 'e', exec, 'c', stamp, 'm', max_attempts)
else
  redis.call('HSET', jk, 't', jtype, 'p', ARGV[6], 's', 1, 'e', exec, 'c', stamp)
end
count(P, jtype, 'enqueued', 1)
redis.call('ZADD', q, exec, id)
-- A queue that held jobs already is in both indexes: only a new one is added.
if redis.call('ZCARD', q) == 1 then
  redis.call('ZADD', KEYS[1], 0, jtype)
  redis.call('ZADD', KEYS[3], 0, jtype)
end
wake_for(P, jtype, id, tonumber(exec), now, q)
return {now, id}
