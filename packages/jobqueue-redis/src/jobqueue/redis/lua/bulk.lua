-- One bulk action over a chunk of jobs a listing found (at most ~500 a call,
-- so Redis serves others between chunks). Each job is read again here: one
-- that changed since the listing and no longer matches is not counted.
-- KEYS: tz, cfg, fx, ts:1, ts:5, ct of the shard (a cancel and a retry count: see count() in
-- _common.lua), then each job's hash in ARGV's order.
-- ARGV: prefix, action (1 retry, 2 cancel, 3 delete), status filter or '',
-- updated-before filter (ms) or '', the cancel channel, then the job ids.
-- Returns {matched, changed}.
local P = ARGV[1]
local action = ARGV[2]
local want_status = ARGV[3]
local before = tonumber(ARGV[4])
local channel = ARGV[5]
local now = clock_ms()
local retention, cap = config(P)
local matched, changed = 0, 0
for i = 6, #ARGV do
  local id = ARGV[i]
  local jk = KEYS[i + 1]
  local f = live_fields(jk, now, retention)
  if f and (want_status == '' or f[1] == want_status) then
    local updated = tonumber(redis.call('HGET', jk, 'u') or redis.call('HGET', jk, 'c'))
    if not before or updated < before then
      matched = matched + 1
      local verdict
      if action == '1' then
        verdict = retry_job(P, jk, id, f, now)
      elseif action == '2' then
        verdict = cancel_job(P, jk, id, f, now, retention, cap, channel)
      else
        verdict = delete_job(P, jk, id, f)
      end
      if verdict == 'ok' then
        changed = changed + 1
      end
    end
  end
end
return {matched, changed}
