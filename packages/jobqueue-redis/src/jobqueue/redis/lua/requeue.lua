-- The sweep: hand back jobs whose lease deadline passed, and forget finished
-- jobs whose retention ran out. Its cost follows the work it finds, not the
-- number of types ever seen: it visits only types whose entry in 'lx' (a
-- lower bound of their earliest lease deadline) or 'fx' (a lower bound of
-- their oldest finish) says there may be something to do, and forgets at most
-- `limit` finished jobs per call.
-- KEYS: tz, cfg, lx, fx, sweep, ts:1, ts:3, ts:4, ts:5, ct of the shard.
-- ARGV: prefix, limit, default_max_attempts, max_unconfirmed, lock_ms, lock_token.
-- With lock_ms > 0 the sweep runs only if no other sweep ran in the last
-- lock_ms (a SET NX PX lock), so many servers and workers sweep once between them.
-- Returns {expired leases handed back or failed, finished jobs forgotten}, or
-- {-1, 0} when another sweeper holds the lock.
local P = ARGV[1]
local limit = tonumber(ARGV[2])
local default_max = tonumber(ARGV[3])
local max_unconfirmed = tonumber(ARGV[4])
local lock_ms = tonumber(ARGV[5])
if lock_ms > 0 and not redis.call('SET', P .. 'sweep', ARGV[6], 'NX', 'PX', int(lock_ms)) then
  return {-1, 0}
end
local now = clock_ms()
local retention, cap = config(P)

-- Types left with no jobs at all leave the index of types.
local function prune(jtype)
  if redis.call('EXISTS', P .. 'q:' .. jtype, P .. 'pl:' .. jtype, P .. 'qk:' .. jtype,
      P .. 'r:' .. jtype,
      P .. 'd:' .. jtype .. ':3',
      P .. 'd:' .. jtype .. ':4', P .. 'd:' .. jtype .. ':5') == 0 then
    redis.call('ZREM', KEYS[1], jtype)
  end
end

local expired = 0
local lx = P .. 'lx'
for _, jtype in ipairs(redis.call('ZRANGE', lx, '-inf', now, 'BYSCORE', 'LIMIT', 0, int(limit))) do
  if expired >= limit then
    break
  end
  local r = P .. 'r:' .. jtype
  local ids = redis.call('ZRANGE', r, '-inf', now, 'BYSCORE', 'LIMIT', 0, int(limit - expired))
  for _, id in ipairs(ids) do
    local jk = P .. 'j:' .. id
    local keys = redis.call('HMGET', jk, 'k', 'uk', 'lk', 'g')
    local written = {jk, P .. 'q:' .. jtype, P .. 'w:' .. jtype, P .. 'd:' .. jtype .. ':4',
      P .. 'd:' .. jtype .. ':5', kkey(P, jtype, keys[1] or ''), ukey(P, jtype, keys[2] or '')}
    if keys[3] then
      for _, key in ipairs(slot_keys(P, jtype)) do
        written[#written + 1] = key
      end
    end
    for _, key in ipairs(prio_keys(P, jk, jtype)) do
      written[#written + 1] = key
    end
    probe(written)
    expired = expired + 1
    redis.call('ZREM', r, id)
    -- Its slot frees whatever comes next (see slot_freed).
    slot_freed(P, jtype, keys[3], keys[4], now)
    count(P, jtype, 'leases_expired', 1)
    local f = redis.call('HMGET', jk, 'a', 'm', 'x', 'n', 'z')
    local max_attempts = tonumber(f[2]) or default_max
    if f[3] == '1' then
      finish(P, jk, id, jtype, 5, now, retention, cap)
    elseif f[4] and (tonumber(f[5]) or 0) < max_unconfirmed then
      -- Never confirmed: the claim's reply may never have reached a worker,
      -- so the job may never have run. Give the attempt back.
      redis.call('HINCRBY', jk, 'a', -1)
      redis.call('HINCRBY', jk, 'z', 1)
      requeue(P, jk, id, jtype, now, now)
    elseif (tonumber(f[1]) or 0) >= max_attempts then
      -- The worker died on every attempt: stop feeding it to workers.
      redis.call('HSET', jk, 'err', 'lease expired on the last attempt')
      finish(P, jk, id, jtype, 4, now, retention, cap)
    else
      requeue(P, jk, id, jtype, now, now)
    end
  end
  -- The type's entry moves to its real earliest deadline (a renew that
  -- shortens a lease lowers it again, so it stays a lower bound), or goes.
  local first = redis.call('ZRANGE', r, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', lx, jtype)
  else
    redis.call('ZADD', lx, first[2], jtype)
  end
end

local forgotten = 0
local fx = P .. 'fx'
local horizon = now - retention
for _, jtype in ipairs(redis.call('ZRANGE', fx, '-inf', horizon, 'BYSCORE', 'LIMIT', 0, int(limit))) do
  if forgotten >= limit then
    break
  end
  local oldest = -1
  for status = 3, 5 do
    local dk = P .. 'd:' .. jtype .. ':' .. status
    local ids = redis.call('ZRANGE', dk, '-inf', horizon, 'BYSCORE', 'LIMIT', 0,
      int(limit - forgotten))
    if #ids > 0 then
      -- Their hashes expire by themselves (PEXPIRE at finish); only the index entries go.
      redis.call('ZREM', dk, unpack(ids))
      forgotten = forgotten + #ids
    end
    local first = redis.call('ZRANGE', dk, 0, 0, 'WITHSCORES')
    if #first > 0 and (oldest < 0 or tonumber(first[2]) < oldest) then
      oldest = tonumber(first[2])
    end
  end
  if oldest < 0 then
    redis.call('ZREM', fx, jtype)
    prune(jtype)
  else
    redis.call('ZADD', fx, oldest, jtype)
  end
end
return {expired, forgotten}
