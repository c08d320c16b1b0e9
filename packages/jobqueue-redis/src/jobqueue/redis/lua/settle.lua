-- Apply worker verdicts on leased jobs; a lease no longer held (stale token, or
-- deadline passed by Redis's clock) changes nothing.
-- KEYS: tz, cfg, fx, ts:1, ts:3, ts:4, ts:5, ct of the shard. ARGV: prefix, then
-- ARGV[2]: plain completions (no result, no error) packed in one string,
-- 'id\0token\0id\0token...' ('' for none): one argument instead of seven per
-- job, because encoding arguments is most of a worker's settle cost;
-- then per other outcome: id, token, kind (c complete, r retry, f fail,
-- l release, x cancelled), has_result ('1'/'0'), result, error|'', retry_delay_ms|''.
-- Returns 1 per applied outcome, 0 per rejected one: the packed ones first.
-- A job with a limit key frees its key's running slot (see slot_freed), and
-- one of a concurrency-limited type wakes an idle worker of the type (once
-- per type per call), so a freed slot is taken without polling.
local P = ARGV[1]
local now = clock_ms()
local retention, cap = config(P)
local out = {}
local probed = {} -- types whose keys were probed in this call
local finished = {} -- d key -> {jtype, status, n}: indexed once per call
local retried = {} -- type -> retries: counted once per call
local freed = {} -- concurrency-limited type -> '1': woken once per call

local function apply(id, token, kind, has_result, result, err, retry_delay)
  local jk = P .. 'j:' .. id
  local jtype, cancel_requested, ikey, ulock, lkey, gated, watched = held(jk, token, now)
  if not jtype then
    return 0
  end
  -- A type's keys, once probed, stay on this node until the script ends.
  local keys = {}
  if not probed[jtype] then
    probed[jtype] = true
    keys = {P .. 'r:' .. jtype, P .. 'q:' .. jtype, P .. 'w:' .. jtype,
      P .. 'd:' .. jtype .. ':3', P .. 'd:' .. jtype .. ':4', P .. 'd:' .. jtype .. ':5'}
  end
  if lkey and not probed[jtype .. '/'] then
    probed[jtype .. '/'] = true
    for _, key in ipairs(slot_keys(P, jtype)) do
      keys[#keys + 1] = key
    end
  end
  if ikey then
    keys[#keys + 1] = kkey(P, jtype, ikey)
  end
  if ulock then
    keys[#keys + 1] = ukey(P, jtype, ulock)
  end
  if PROBE and not (kind == 'c' or kind == 'f' or kind == 'x' or cancel_requested == '1') then
    -- It goes back to a queue: its priority's, probed with the rest (the
    -- list costs a read: built only where a slot can move).
    for _, key in ipairs(prio_keys(P, jk, jtype)) do
      keys[#keys + 1] = key
    end
  end
  if #keys > 0 then
    probe(keys)
  end
  redis.call('ZREM', P .. 'r:' .. jtype, id)
  if lkey then
    slot_freed(P, jtype, lkey, false, now)
  end
  if gated == '1' then
    freed[jtype] = '1'
  end
  if err ~= '' then
    redis.call('HSET', jk, 'err', err)
  end
  if kind == 'c' then
    if has_result == '1' then
      redis.call('HSET', jk, 'r', result)
    end
    finish(P, jk, id, jtype, 3, now, retention, cap, finished, ikey, ulock, watched)
  elseif kind == 'f' then
    finish(P, jk, id, jtype, 4, now, retention, cap, finished, ikey, ulock, watched)
  elseif kind == 'x' or cancel_requested == '1' then
    -- A retry or release of a job someone cancelled ends it instead.
    finish(P, jk, id, jtype, 5, now, retention, cap, finished, ikey, ulock, watched)
  else
    if kind == 'l' then
      redis.call('HINCRBY', jk, 'a', -1)
    else
      retried[jtype] = (retried[jtype] or 0) + 1
    end
    -- A settled lease was confirmed: its unconfirmed expiries no longer run in a row.
    redis.call('HDEL', jk, 'z')
    local due = now
    if retry_delay ~= '' then
      due = now + tonumber(retry_delay)
    end
    requeue(P, jk, id, jtype, due, now, watched)
  end
  return 1
end

local packed = ARGV[2]
local pos = 1
while pos <= #packed do
  local a = string.find(packed, '\0', pos, true)
  local b = string.find(packed, '\0', a + 1, true) or (#packed + 1)
  out[#out + 1] = apply(string.sub(packed, pos, a - 1), string.sub(packed, a + 1, b - 1),
    'c', '0', '', '', '')
  pos = b + 1
end
for i = 3, #ARGV, 7 do
  out[#out + 1] = apply(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
    ARGV[i + 5], ARGV[i + 6])
end
for dk, f in pairs(finished) do
  finish_index(P, dk, f.jtype, f.status, now, cap, f.n)
end
for jtype in pairs(freed) do
  wake(P, jtype)
end
for jtype, n in pairs(retried) do
  count(P, jtype, 'retried', n)
end
return out
