-- Delete a finished job at once (see delete_job in _actions.lua).
-- KEYS: cfg of the shard, the job's hash. ARGV: prefix, id.
-- Returns {'ok', fields as they were} | {'missing'} | {'status', status}.
local P = ARGV[1]
local id = ARGV[2]
local jk = KEYS[2]
local now = clock_ms()
local f = live_fields(jk, now, config(P))
if not f then
  return {'missing'}
end
local fields = redis.call('HGETALL', jk)
local verdict = delete_job(P, jk, id, f)
if verdict ~= 'ok' then
  return {'status', verdict}
end
return {'ok', fields}
