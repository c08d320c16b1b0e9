-- Lease up to `limit` due jobs of the given types, in turns across types.
-- KEYS[1] the set of known types. ARGV: prefix, now, limit, lease_ms, token_base, types...
-- Returns {next_due, id, token, fields, id, token, fields, ...}; next_due is
-- the earliest due time among the types when nothing was claimed, else -1.
local P = ARGV[1]
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local deadline = now + tonumber(ARGV[4])
local base = ARGV[5]
local active = {}
for i = 6, #ARGV do
  active[#active + 1] = ARGV[i]
end
local types = active
local out = {-1}
local count = 0
while count < limit and #active > 0 do
  local still = {}
  -- An equal share per type per round: a flooded type cannot starve another.
  local share = math.ceil((limit - count) / #active)
  for _, jtype in ipairs(active) do
    local want = math.min(share, limit - count)
    if want <= 0 then
      break
    end
    local q = P .. 'q:' .. jtype
    local ids = redis.call('ZRANGE', q, '-inf', now, 'BYSCORE', 'LIMIT', 0, want)
    if #ids > 0 then
      redis.call('ZREM', q, unpack(ids))
      local r = P .. 'r:' .. jtype
      for _, id in ipairs(ids) do
        local jk = P .. 'j:' .. id
        if redis.call('HGET', jk, 's') == '1' then
          count = count + 1
          local token = base .. count
          redis.call('HINCRBY', jk, 'a', 1)
          redis.call('HSET', jk, 's', 2, 'u', now, 'l', token, 'd', deadline)
          redis.call('ZADD', r, deadline, id)
          notify(P, jk, id)
          out[#out + 1] = id
          out[#out + 1] = token
          out[#out + 1] = redis.call('HGETALL', jk)
        end
      end
      if #ids == want then
        still[#still + 1] = jtype
      end
    end
  end
  active = still
end
if count == 0 then
  local next_due = -1
  for _, jtype in ipairs(types) do
    local first = redis.call('ZRANGE', P .. 'q:' .. jtype, 0, 0, 'WITHSCORES')
    if #first > 0 then
      local due = tonumber(first[2])
      if next_due < 0 or due < next_due then
        next_due = due
      end
    end
  end
  out[1] = next_due
else
  -- Work is left that this worker cannot take: wake another one.
  for _, jtype in ipairs(active) do
    if #redis.call('ZRANGE', P .. 'q:' .. jtype, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1) > 0 then
      wake(P, jtype)
    end
  end
end
return out
