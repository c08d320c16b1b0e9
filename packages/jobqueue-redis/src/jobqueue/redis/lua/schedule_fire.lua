-- One planned step of a schedule, applied once: the leaderless firing of
-- docs/domain.md ("Recurring schedules"). Any number of servers plan the same
-- step from the same version; the first to run this applies it and bumps the
-- version, the others find the version moved and change nothing.
-- KEYS: sx, tz, ts:1, sc:<id>, ct (all of the schedule's shard, which is its job
-- type's shard, so the tick's job is written in the same atomic step).
-- ARGV: prefix, id, version, tick ('' for none), last tick ('' for none),
-- next tick ('' for none), missed, the job id, the job's idempotency key.
-- Returns {outcome, now, job id or ''}: outcome 'fired', 'held' (overlap
-- policy), 'advanced' (no tick), or 'stale' / 'paused' / 'gone' / 'early'
-- (not applied).
local P, sid, sk = ARGV[1], ARGV[2], KEYS[4]
local now = clock_ms()
local f = redis.call('HMGET', sk, 'v', 'pa', 'ov', 'lj', 'ty', 'pl', 'ma', 'hd', 'pr', 'lk')
if not f[1] then
  return {'gone', now, ''}
end
if f[1] ~= ARGV[3] then
  return {'stale', now, ''}
end
if f[2] == '1' then
  return {'paused', now, ''}
end
local tick = ARGV[4]
if tick ~= '' and tonumber(tick) > now then
  -- Redis decides time: no host with a fast clock fires a tick early.
  return {'early', now, ''}
end
local jid, ikey, jtype = ARGV[8], ARGV[9], f[5]
local enqueuing = tick ~= ''
if enqueuing and f[3] ~= 'all' and f[4] then
  local s = redis.call('HGET', P .. 'j:' .. f[4], 's')
  -- skip: not while the previous job is pending or running; buffer one: not
  -- while it is pending (one waits behind a running one at most).
  if s == '1' or (s == '2' and f[3] == 'skip') then
    enqueuing = false
  end
end
local jk = P .. 'j:' .. jid
local kk = kkey(P, jtype, ikey)
if enqueuing then
  -- The template's priority (absent: 0) picks the queue, as add.lua does.
  local prio, lkey = f[9] or '0', f[10]
  local probed = {sk, jk, kk, P .. 'q:' .. jtype, P .. 'w:' .. jtype}
  if lkey then
    -- A limit key (never beside a priority): its key's queue, as add.lua does.
    for _, key in ipairs(keyed_keys(P, jtype, lkey)) do
      probed[#probed + 1] = key
    end
  elseif prio ~= '0' then
    probed[#probed + 1] = qkey(P, jtype, prio)
    probed[#probed + 1] = P .. 'pl:' .. jtype
  end
  probe(probed)
  local prior = redis.call('GET', kk)
  if prior and redis.call('EXISTS', P .. 'j:' .. prior) == 1 then
    -- The tick's job exists already: its key is the tick's, so it fired.
    jid = prior
  else
    local stamp = int(now)
    local fields = {'t', jtype, 'p', f[6], 's', 1, 'e', stamp, 'c', stamp, 'k', ikey}
    if f[7] and f[7] ~= '' then
      fields[#fields + 1] = 'm'
      fields[#fields + 1] = f[7]
    end
    -- The template's headers (JSON, as a job's 'h'); an empty map is not stored.
    if f[8] and f[8] ~= '{}' then
      fields[#fields + 1] = 'h'
      fields[#fields + 1] = f[8]
    end
    if prio ~= '0' then
      fields[#fields + 1] = 'pr'
      fields[#fields + 1] = prio
    end
    if lkey then
      fields[#fields + 1] = 'lk'
      fields[#fields + 1] = lkey
    end
    redis.call('HSET', jk, unpack(fields))
    redis.call('SET', kk, jid)
    enqueue(P, jtype, prio, now, jid, lkey)
    redis.call('ZADD', KEYS[2], 0, jtype)
    redis.call('ZADD', KEYS[3], 0, jtype)
    count(P, jtype, 'enqueued', 1)
    wake(P, jtype)
  end
else
  probe({sk})
end
redis.call('HINCRBY', sk, 'v', 1)
if ARGV[5] ~= '' then
  redis.call('HSET', sk, 'lt', ARGV[5])
end
local missed = tonumber(ARGV[7])
if missed > 0 then
  redis.call('HINCRBY', sk, 'mi', int(missed))
end
if ARGV[6] ~= '' then
  redis.call('HSET', sk, 'nx', ARGV[6])
  redis.call('ZADD', KEYS[1], ARGV[6], sid)
else
  -- No tick left (a cron expression that never matches again): nothing to plan.
  redis.call('HSET', sk, 'nx', -1)
  redis.call('ZREM', KEYS[1], sid)
end
if enqueuing then
  redis.call('HSET', sk, 'lj', jid)
  redis.call('HINCRBY', sk, 'fi', 1)
  return {'fired', now, jid}
end
if tick ~= '' then
  redis.call('HINCRBY', sk, 'so', 1)
  return {'held', now, ''}
end
return {'advanced', now, ''}
