-- Migration to several shards, step 2 of 2, on the one-shard layout: the jobs
-- of a taken batch are stored in their shards; forget them here, and leave a
-- pointer from each old id to its new one, so GetJob and CancelJob by an old
-- id still find the job (it expires with the retention).
-- KEYS: cfg, migrating of the old layout. ARGV: prefix, then old id, new id pairs.
local P = ARGV[1]
local retention = tonumber(redis.call('HGET', KEYS[1], 'retention_ms')) or 86400000
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  local jk = P .. 'j:' .. id
  local ikey = redis.call('HGET', jk, 'k')
  if ikey and redis.call('GET', P .. 'k:' .. ikey) == id then
    redis.call('DEL', P .. 'k:' .. ikey)
  end
  -- Its unique key moved with it (the new shard's add took it): no lock stays behind.
  local ukey = redis.call('HGET', jk, 'uk')
  if ukey and redis.call('GET', P .. 'u:' .. ukey) == id then
    redis.call('DEL', P .. 'u:' .. ukey)
  end
  redis.call('DEL', jk)
  redis.call('ZREM', KEYS[2], id)
  redis.call('SET', P .. 'moved:' .. id, ARGV[i + 1], 'PX', retention)
end
return #ARGV / 2
