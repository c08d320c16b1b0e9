-- Store new PENDING jobs, all in one step.
-- KEYS: tz, cfg, ts:1, ct of the shard (KEYS[1] routes the call to the shard's slot).
-- ARGV: prefix, the batch key or '', then per job three
-- arguments: a head "id type execution_time|'-' max_attempts|''" (four words,
-- none of which can hold a space; '-' means due now), the payload, and the
-- idempotency key or ''. Creation and "now" are Redis's time, not the caller's.
-- Packing the fixed fields keeps argument encoding, the client's main cost
-- for large batches, to three strings a job.
-- Returns the time it used, then, per job, the id stored under it: its own,
-- or the id of the job an idempotency key already named. A known batch key
-- returns the ids its first call stored instead, unless one of those jobs is gone.
local P = ARGV[1]
local now = clock_ms()
local batch = ARGV[2]
-- The retention matters only to idempotency and batch keys: read it only then,
-- since a plain add is the hottest call there is.
local retention_ms = false
local function retention()
  if not retention_ms then
    retention_ms = config(P)
  end
  return retention_ms
end
if batch ~= '' then
  local prior = redis.call('GET', P .. 'b:' .. batch)
  local stored_at, list = string.match(prior or '', '^(%d+):(.*)$')
  -- Remembered for the retention period, as job keys are.
  if stored_at and tonumber(stored_at) + retention() > now then
    local ids = {now}
    for id in string.gmatch(list, '[^,]+') do
      if gone(P .. 'j:' .. id, now, retention()) then
        ids = false
        break
      end
      ids[#ids + 1] = id
    end
    if ids then
      return ids
    end
  end
end
local out = {now}
local claimed_keys = {}
local due_types = {} -- type -> its earliest new job
local queued = {} -- type -> ZADD arguments: due, id, due, id ...
for i = 3, #ARGV, 3 do
  local id, jtype, exec, max_attempts = string.match(ARGV[i], '^(%S+) (%S+) (%S+) (%d*)$')
  if exec == '-' then
    exec = now
  end
  local payload, ikey = ARGV[i + 1], ARGV[i + 2]
  local prior = false
  if ikey ~= '' then
    prior = claimed_keys[ikey]
    if not prior then
      prior = redis.call('GET', P .. 'k:' .. ikey)
      -- The key outlives its job by at most the retention period.
      if prior and gone(P .. 'j:' .. prior, now, retention()) then
        prior = false
      end
    end
  end
  if prior then
    out[#out + 1] = prior
  else
    local jk = P .. 'j:' .. id
    -- A new job omits what it can derive (updated = created, attempts = 0):
    -- most of a pending job's memory is its field list.
    local fields = {'t', jtype, 'p', payload, 's', 1, 'e', exec, 'c', now}
    if max_attempts ~= '' then
      fields[#fields + 1] = 'm'
      fields[#fields + 1] = max_attempts
    end
    if ikey ~= '' then
      fields[#fields + 1] = 'k'
      fields[#fields + 1] = ikey
      -- No expiry yet: the key must live as long as the job does.
      redis.call('SET', P .. 'k:' .. ikey, id)
      claimed_keys[ikey] = id
    end
    redis.call('HSET', jk, unpack(fields))
    local members = queued[jtype]
    if not members then
      members = {}
      queued[jtype] = members
    end
    members[#members + 1] = exec
    members[#members + 1] = id
    local due = tonumber(exec)
    local earliest = due_types[jtype]
    if not earliest or due < earliest.due then
      due_types[jtype] = { id = id, due = due }
    end
    out[#out + 1] = id
  end
end
-- One ZADD per type and chunk: a call per job costs more than the insert.
for jtype, members in pairs(queued) do
  local q = P .. 'q:' .. jtype
  for i = 1, #members, 1000 do
    redis.call('ZADD', q, unpack(members, i, math.min(i + 999, #members)))
  end
  count(P, jtype, 'enqueued', #members / 2)
  -- A queue that held jobs already is in both indexes (they drop a type only
  -- once its queue is gone): only a queue this call started needs adding.
  if redis.call('ZCARD', q) == #members / 2 then
    redis.call('ZADD', KEYS[1], 0, jtype)
    redis.call('ZADD', P .. 'ts:1', 0, jtype)
  end
end
-- One token wakes one blocked worker; a worker that finds more work than it
-- can take passes the token on (see claim.lua), so one token per type suffices.
for jtype, earliest in pairs(due_types) do
  wake_for(P, jtype, earliest.id, earliest.due, now)
end
if batch ~= '' then
  -- It expires no later than any of its jobs, which outlive their finish.
  redis.call('SET', P .. 'b:' .. batch, now .. ':' .. table.concat(out, ',', 2), 'PX', retention())
end
return out
