-- Cancel a PENDING job, or flag a RUNNING one for its worker to stop.
-- KEYS: tz, cfg, fx, ts:5, ct of the shard, the job's hash.
-- ARGV: prefix, id, the channel of cancel requests (on a cluster the shard's own,
-- published with SPUBLISH; else one for every shard).
-- Returns {'ok', fields} | {'missing'} | {'finished', status}.
local P = ARGV[1]
local now = clock_ms()
local retention, cap = config(P)
local id = ARGV[2]
local jk = KEYS[#KEYS]
local f = redis.call('HMGET', jk, 's', 't', 'x', 'f', 'pr', 'lk')
if not f[1] or (f[4] and tonumber(f[4]) + retention <= now) then
  return {'missing'}
end
if PROBE then -- the list costs a read: built only where a slot can move
  local keys = redis.call('HMGET', jk, 'k', 'uk')
  local written = pending_keys(P, f[2], f[5], f[6])
  for _, key in ipairs({P .. 'd:' .. f[2] .. ':5', kkey(P, f[2], keys[1] or ''),
      ukey(P, f[2], keys[2] or '')}) do
    written[#written + 1] = key
  end
  probe(written)
end
if f[1] == '1' then
  dequeue(P, f[2], f[5], f[6], id)
  -- The reply is read before the hash's retention starts (see finish_kept).
  finish_kept(P, jk, id, f[2], 5, now, retention, cap)
  local fields = redis.call('HGETALL', jk)
  redis.call('PEXPIRE', jk, int(retention))
  return {'ok', fields}
elseif f[1] == '2' then
  if f[3] ~= '1' then
    redis.call('HSET', jk, 'x', 1, 'u', int(now))
    notify(P, jk, id)
    -- Workers listen here to stop the handler at once, not at their next heartbeat.
    redis.call(PUBLISH, ARGV[3], id)
  end
else
  return {'finished', f[1]}
end
return {'ok', redis.call('HGETALL', jk)}
