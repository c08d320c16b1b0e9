-- Count a watcher of a job in or out. KEYS: the job's hash. ARGV: prefix, id, delta.
-- Returns the job's fields, or an empty list when the job does not exist.
local jk = KEYS[1]
if redis.call('EXISTS', jk) == 0 then
  return {}
end
if redis.call('HINCRBY', jk, 'w', tonumber(ARGV[3])) <= 0 then
  redis.call('HDEL', jk, 'w')
end
return redis.call('HGETALL', jk)
