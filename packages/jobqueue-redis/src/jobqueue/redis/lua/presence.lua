-- Worker presence, on the one fixed hash tag of the prefix ('{prefix}:', the
-- one-shard namespace, whatever the shard layout), so one call lists every
-- worker. KEYS: wk:exp (sorted set: worker id by expiry ms, Redis time),
-- wk:info (hash: worker id -> "<last seen ms>|<the worker's JSON>").
-- ARGV: op ('beat' | 'drop' | 'list'), bound (most expired entries pruned
-- per call, and most workers listed), then per op:
--   beat: id, ttl_ms, json -> the last seen ms it stored
--   drop: id -> 1 if it was listed, else 0
--   list: -> {now, id, info, id, info, ...}: live workers, earliest expiry first
-- Every call first forgets up to `bound` workers whose time ran out, so the
-- keys hold what heartbeats keep alive, not every worker that ever ran.
local exp, info = KEYS[1], KEYS[2]
-- `bound` as Redis reads a LIMIT (see int in _common.lua, not loaded here:
-- Redis 7.2.0 to 7.2.4 would send a number like 200000000 as '2e+8').
local op, bound = ARGV[1], string.format('%d', tonumber(ARGV[2]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Read both keys before writing either (see probe in _common.lua): a slot
-- moving mid-script then fails the call before it changed anything.
redis.call('EXISTS', exp, info)

local gone = redis.call('ZRANGE', exp, '-inf', now, 'BYSCORE', 'LIMIT', 0, bound)
if #gone > 0 then
  redis.call('ZREM', exp, unpack(gone))
  redis.call('HDEL', info, unpack(gone))
end

if op == 'beat' then
  local id, ttl = ARGV[3], tonumber(ARGV[4])
  redis.call('ZADD', exp, now + ttl, id)
  redis.call('HSET', info, id, now .. '|' .. ARGV[5])
  return now
elseif op == 'drop' then
  local id = ARGV[3]
  redis.call('HDEL', info, id)
  return redis.call('ZREM', exp, id)
end
local ids = redis.call('ZRANGE', exp, '(' .. now, '+inf', 'BYSCORE', 'LIMIT', 0, bound)
local out = {now}
if #ids == 0 then
  return out
end
local values = redis.call('HMGET', info, unpack(ids))
for i, id in ipairs(ids) do
  if values[i] then
    out[#out + 1] = id
    out[#out + 1] = values[i]
  end
end
return out
