-- Apply worker verdicts on leased jobs; a stale token changes nothing.
-- KEYS[1] the set of known types. ARGV: prefix, now, retention_ms, then per
-- outcome: id, token, kind (c complete, r retry, f fail, l release, x cancelled),
-- has_result ('1'/'0'), result, error|'', retry_at|''.
-- Returns 1 per applied outcome, 0 per rejected one.
local P = ARGV[1]
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV, 7 do
  local id, token, kind = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local jk = P .. 'j:' .. id
  local f = redis.call('HMGET', jk, 's', 'l', 't', 'x')
  if f[1] ~= '2' or f[2] ~= token then
    out[#out + 1] = 0
  else
    local jtype = f[3]
    redis.call('ZREM', P .. 'r:' .. jtype, id)
    local err = ARGV[i + 5]
    if err ~= '' then
      redis.call('HSET', jk, 'err', err)
    end
    if kind == 'c' then
      if ARGV[i + 3] == '1' then
        redis.call('HSET', jk, 'r', ARGV[i + 4])
      end
      finish(P, jk, id, jtype, 3, now, retention)
    elseif kind == 'f' then
      finish(P, jk, id, jtype, 4, now, retention)
    elseif kind == 'x' or f[4] == '1' then
      -- A retry or release of a job someone cancelled ends it instead.
      finish(P, jk, id, jtype, 5, now, retention)
    else
      if kind == 'l' then
        redis.call('HINCRBY', jk, 'a', -1)
      end
      local due = now
      if ARGV[i + 6] ~= '' then
        due = tonumber(ARGV[i + 6])
      end
      requeue(P, jk, id, jtype, due, now)
    end
    out[#out + 1] = 1
  end
end
return out
