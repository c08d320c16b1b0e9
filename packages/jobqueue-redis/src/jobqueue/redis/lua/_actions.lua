-- Helpers of the operators' writes (retry.lua, delete.lua, bulk.lua), loaded
-- after _common.lua. Each step returns 'ok' when it changed the job, or the
-- status digit the job was in when the action does not apply to it; it reads
-- every key it will write first (probe), so it fails before changing anything.

-- The job's status, type, idempotency key, finish time and cancel flag, or
-- nil when it is gone (deleted, or finished past its retention).
local function live_fields(jk, now, retention)
  local f = redis.call('HMGET', jk, 's', 't', 'k', 'f', 'x', 'pr', 'lk')
  if not f[1] or not f[2] or (f[4] and tonumber(f[4]) + retention <= now) then
    return nil
  end
  return f
end

-- A FAILED or CANCELLED job back to its queue, due now, with a fresh attempt
-- budget (attempts 0). Its last error stays until its next run overwrites it;
-- it and its idempotency key (which still names it) no longer expire.
local function retry_job(P, jk, id, f, now)
  local s, jtype, ikey = f[1], f[2], f[3]
  if s ~= '4' and s ~= '5' then
    return s
  end
  local dk = P .. 'd:' .. jtype .. ':' .. s
  local written = {dk, kkey(P, jtype, ikey or ''), P .. 'w:' .. jtype, P .. 'pl:' .. jtype}
  if f[7] then
    for _, key in ipairs(keyed_keys(P, jtype, f[7])) do
      written[#written + 1] = key
    end
  else
    written[#written + 1] = qkey(P, jtype, f[6])
  end
  probe(written)
  redis.call('ZREM', dk, id)
  local stamp = int(now)
  redis.call('HSET', jk, 's', 1, 'e', stamp, 'u', stamp, 'a', 0)
  redis.call('HDEL', jk, 'f', 'r', 'x', 'l', 'd', 'n', 'z')
  redis.call('PERSIST', jk)
  if ikey and redis.call('GET', kkey(P, jtype, ikey)) == id then
    redis.call('PERSIST', kkey(P, jtype, ikey))
  end
  enqueue(P, jtype, f[6], now, id, f[7])
  -- Back in its queue: counted as enqueued in this step, so enqueued minus
  -- finished stays the queue's depth (docs/operations.md, Metrics).
  count(P, jtype, 'enqueued', 1)
  redis.call('ZADD', P .. 'tz', 0, jtype)
  redis.call('ZADD', P .. 'ts:1', 0, jtype)
  wake_for(P, jtype, id, now, now)
  notify(P, jk, id)
  return 'ok'
end

-- Forget a finished job now: its hash, its finished index entry, its
-- idempotency key if that still names it. Watchers hear of it first.
local function delete_job(P, jk, id, f)
  local s, jtype = f[1], f[2]
  if s == '1' or s == '2' then
    return s
  end
  local dk = P .. 'd:' .. jtype .. ':' .. s
  probe({dk, kkey(P, jtype, f[3] or '')})
  notify(P, jk, id)
  redis.call('ZREM', dk, id)
  forget(P, id)
  return 'ok'
end

-- cancel.lua's step: a PENDING job ends CANCELLED, a RUNNING one is flagged
-- and its worker told on `channel` (once: a second request changes nothing).
local function cancel_job(P, jk, id, f, now, retention, cap, channel)
  local s, jtype = f[1], f[2]
  if s == '1' then
    -- Its unique lock too: finish releases it (as cancel.lua probes it).
    local lock = redis.call('HGET', jk, 'uk')
    local written = pending_keys(P, jtype, f[6], f[7])
    for _, key in ipairs({P .. 'd:' .. jtype .. ':5', kkey(P, jtype, f[3] or ''),
        ukey(P, jtype, lock or '')}) do
      written[#written + 1] = key
    end
    probe(written)
    dequeue(P, jtype, f[6], f[7], id)
    finish(P, jk, id, jtype, 5, now, retention, cap, nil, f[3], lock or false)
    return 'ok'
  elseif s == '2' and f[5] ~= '1' then
    redis.call('HSET', jk, 'x', 1, 'u', int(now))
    notify(P, jk, id)
    redis.call(PUBLISH, channel, id)
    return 'ok'
  end
  return s
end
