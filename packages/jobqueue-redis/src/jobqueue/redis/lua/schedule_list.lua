-- Schedules of one shard, by id. KEYS: sa. ARGV: prefix, limit.
-- Returns per schedule its id and its fields.
local P = ARGV[1]
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, int(tonumber(ARGV[2]) - 1))) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', P .. 'sc:' .. id)
end
return out
