-- Migration to several shards, step 2 of 2, on the one-shard layout: the jobs
-- of a taken batch are stored in their shards; forget them here, and leave a
-- pointer from each old id to its new one, so GetJob and CancelJob by an old
-- id still find the job (it expires with the retention).
-- KEYS: cfg, migrating of the old layout. ARGV: prefix, then old id, new id pairs.
local P = ARGV[1]
-- A type's idempotency key and unique lock, named as _common.lua's kkey and ukey do.
local function kkey(jtype, key)
  return P .. 'k:' .. jtype .. '/' .. key
end
local function ukey(jtype, key)
  return P .. 'u:' .. jtype .. '/' .. key
end
local retention = tonumber(redis.call('HGET', KEYS[1], 'retention_ms')) or 86400000
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local jk = P .. 'j:' .. id
  local f = redis.call('HMGET', jk, 't', 'k', 'uk')
  local jtype, ikey = f[1] or '', f[2]
  if ikey and redis.call('GET', kkey(jtype, ikey)) == id then
    redis.call('DEL', kkey(jtype, ikey))
  end
  -- Its unique key moved with it (the new shard's add took it): no lock stays behind.
  local lock = f[3]
  if lock and redis.call('GET', ukey(jtype, lock)) == id then
    redis.call('DEL', ukey(jtype, lock))
  end
  redis.call('DEL', jk)
  redis.call('ZREM', KEYS[2], id)
  -- '%d' as int in _common.lua (not loaded here): Redis 7.2.0 to 7.2.4 send
  -- a number like 200000000 as '2e+8', which PX refuses.
  redis.call('SET', P .. 'moved:' .. id, ARGV[i + 1], 'PX', string.format('%d', retention))
end
return #ARGV / 2
