-- Migration to several shards, step 1 of 2, on the one-shard layout: take up
-- to `limit` PENDING jobs out of their queues (every priority's) into 'migrating' (so no worker of
-- the old layout claims them meanwhile), and return them. A batch taken
-- before and not finished (the migration stopped) comes back first, the same,
-- so a rerun stores it again under the same batch key: never twice.
-- KEYS: tz, migrating of the old layout. ARGV: prefix, limit.
-- Returns {id, fields, id, fields, ...}.
local P = ARGV[1]
local limit = tonumber(ARGV[2])
local migrating = KEYS[2]
-- A whole number as Redis reads a ZRANGE rank, as int in _common.lua (not
-- loaded here) writes it: Redis 7.2.0 to 7.2.4 send 200000000 as '2e+8'.
local function int(n)
  return string.format('%d', n)
end
local out = {}
local ids = redis.call('ZRANGE', migrating, 0, int(limit - 1))
if #ids == 0 then
  for _, jtype in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    -- Every queue of the type: q: and one per nonzero priority level (pl:).
    local queues = {P .. 'q:' .. jtype}
    for _, level in ipairs(redis.call('ZRANGE', P .. 'pl:' .. jtype, 0, -1)) do
      queues[#queues + 1] = P .. 'qp:' .. level .. ':' .. jtype
    end
    -- Keyed jobs (qk:, and each in its key's queue kq:<type>/<key>).
    queues[#queues + 1] = P .. 'qk:' .. jtype
    for _, q in ipairs(queues) do
      for _, id in ipairs(redis.call('ZRANGE', q, 0, int(limit - #ids - 1))) do
        redis.call('ZREM', q, id)
        if q == P .. 'qk:' .. jtype then
          local key = redis.call('HGET', P .. 'j:' .. id, 'lk')
          if key then
            redis.call('ZREM', P .. 'kq:' .. jtype .. '/' .. key, id)
          end
        end
        redis.call('ZADD', migrating, 0, id)
        ids[#ids + 1] = id
      end
      if q ~= P .. 'q:' .. jtype and q ~= P .. 'qk:' .. jtype and redis.call('EXISTS', q) == 0 then
        redis.call('ZREM', P .. 'pl:' .. jtype, string.match(q, 'qp:(%-?%d+):'))
      end
      if #ids >= limit then
        break
      end
    end
    if #ids >= limit then
      break
    end
  end
end
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', P .. 'j:' .. id)
end
return out
