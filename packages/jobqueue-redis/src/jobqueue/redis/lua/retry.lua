-- Retry a FAILED or CANCELLED job (see retry_job in _actions.lua).
-- KEYS: tz, cfg, ts:1, ct of the shard, the job's hash. ARGV: prefix, id.
-- Returns {'ok', fields} | {'missing'} | {'status', status}.
local P = ARGV[1]
local id = ARGV[2]
local jk = KEYS[5]
local now = clock_ms()
local f = live_fields(jk, now, config(P))
if not f then
  return {'missing'}
end
local verdict = retry_job(P, jk, id, f, now)
if verdict ~= 'ok' then
  return {'status', verdict}
end
return {'ok', redis.call('HGETALL', jk)}
