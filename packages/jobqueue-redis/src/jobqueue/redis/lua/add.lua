-- Store new PENDING jobs, all in one step.
-- KEYS: tz, cfg, ts:1, ct of the shard (KEYS[1] routes the call to the shard's slot).
-- ARGV: prefix, the batch key or '', then per job five
-- arguments: a head "id type execution_time|'-' max_attempts|'' [priority]" (four
-- words, a fifth for a nonzero priority, none of which can hold a space; '-'
-- means due now; then a tab and the limit key for a job with one), the payload, the
-- idempotency key or '', and the unique rule "scope policy window_ms key" or ''
-- (its lock is ukey(type, key) -> the holder's id: keys are per job type), and the headers as a JSON object or ''
-- (stored as is in field 'h'). A conflict that rejects
-- returns {'unique', key, holder id} and stores nothing. Creation and "now" are Redis's time, not the caller's.
-- Packing the fixed fields keeps argument encoding, the client's main cost
-- for large batches, to three strings a job.
-- Returns the time it used, then, per job, the id stored under it: its own,
-- or the id of the job an idempotency key already named. A known batch key
-- returns the ids its first call stored instead, unless one of those jobs is gone.
local P = ARGV[1]
local now = clock_ms()
local batch = ARGV[2]

-- A job's head: its words, then its limit key ('' for none; a key holds no whitespace).
local function parse_head(text)
  local words, lkey = string.match(text, '^([^\t]*)\t?(.*)$')
  local id, jtype, exec, max_attempts, prio =
    string.match(words, '^(%S+) (%S+) (%S+) (%d*) ?(%-?%d*)$')
  return id, jtype, exec, max_attempts, prio, lkey
end
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
local holders = {} -- unique key -> the job of this call that holds it
-- First decide every job, writing nothing: a unique key whose policy rejects
-- must reject the whole call with no change. A job is stored, or answered by
-- the job its idempotency key names, or by the holder of its unique key.
local plan = {}
for i = 3, #ARGV, 5 do
  local ikey, spec = ARGV[i + 2], ARGV[i + 3]
  if ikey == '' and spec == '' then
    plan[#plan + 1] = false -- a plain new job: nothing to decide (the hot path)
  else
    local id, jtype = string.match(ARGV[i], '^(%S+) (%S+)')
    local step = {prior = false}
    -- Both keys are per job type: within this call too.
    local typed_ikey = jtype .. '/' .. ikey
    if ikey ~= '' then
      step.prior = claimed_keys[typed_ikey]
      if not step.prior then
        step.prior = redis.call('GET', kkey(P, jtype, ikey))
        -- The key outlives its job by at most the retention period.
        if step.prior and gone(P .. 'j:' .. step.prior, now, retention()) then
          step.prior = false
        end
      end
    end
    if not step.prior and spec ~= '' then
      -- A unique job: "scope policy window_ms key" (see UniqueRule).
      local scope, policy, window, key = string.match(spec, '^(%d) (%d) (%d+) (.*)$')
      local typed = jtype .. '/' .. key
      local holder, status = holders[typed], '1'
      if not holder then
        holder = redis.call('GET', ukey(P, jtype, key))
        if holder then
          status = redis.call('HGET', P .. 'j:' .. holder, 's')
          if status ~= '1' and status ~= '2' then
            holder = false -- never left behind by our scripts; a free key if it were
          end
        end
      end
      if holder and policy == '1' then
        step.prior = holder
      elseif holder and not (policy == '3' and status == '1') then
        return {'unique', key, holder}
      else
        step.replace = holder
        step.lock = {key, scope .. ' ' .. policy .. ' ' .. window, scope == '3' and tonumber(window)}
        holders[typed] = id
      end
    end
    if not step.prior and ikey ~= '' then
      claimed_keys[typed_ikey] = id
    end
    plan[#plan + 1] = step
  end
end
-- Probe every key the writes below touch before the first of them (see
-- probe in _common.lua): a batch is never half stored, a lock never names a
-- job that was not written, a holder is never left PENDING beside its successor.
local written = {}
local function will_write(key)
  written[#written + 1] = key
end
local seen_types = {}
for i = 3, PROBE and #ARGV or 0, 5 do -- (nothing to list where nothing is probed)
  local step = plan[(i - 3) / 5 + 1]
  if not (step and step.prior) then
    local id, jtype, _, _, prio, lkey = parse_head(ARGV[i])
    will_write(P .. 'j:' .. id)
    if lkey ~= '' then
      for _, key in ipairs(keyed_keys(P, jtype, lkey)) do
        will_write(key)
      end
      will_write(P .. 'w:' .. jtype)
    end
    if ARGV[i + 2] ~= '' then
      will_write(kkey(P, jtype, ARGV[i + 2]))
    end
    if step and step.lock then
      will_write(ukey(P, jtype, step.lock[1]))
    end
    if not seen_types[jtype .. ' ' .. prio] then
      seen_types[jtype .. ' ' .. prio] = true
      will_write(qkey(P, jtype, prio))
      will_write(P .. 'pl:' .. jtype)
      will_write(P .. 'w:' .. jtype)
    end
    local hk = step and step.replace and (P .. 'j:' .. step.replace)
    local hf = hk and redis.call('HMGET', hk, 't', 'pr', 'k', 'lk')
    -- (A holder of this call is not stored yet: its keys are listed already.)
    if hf and hf[1] then
      will_write(hk)
      for _, key in ipairs(pending_keys(P, hf[1], hf[2], hf[4])) do
        will_write(key)
      end
      will_write(P .. 'd:' .. hf[1] .. ':5')
      if hf[3] then
        will_write(kkey(P, hf[1], hf[3]))
      end
    end
  end
end
if batch ~= '' then
  will_write(P .. 'b:' .. batch)
end
for i = 1, #written, 1000 do
  probe({unpack(written, i, math.min(i + 999, #written))})
end
local due_types = {} -- type -> its earliest new job
local queued = {} -- queue key -> {jtype, prio, ZADD arguments: due, id, due, id ...}
local replaced = {} -- PENDING holders a REPLACE took the key from
local keyed = {} -- type -> its new keyed jobs, which skip `queued` (each in its key's queue)
for i = 3, #ARGV, 5 do
  local step = plan[(i - 3) / 5 + 1]
  local id, jtype, exec, max_attempts, prio, lkey = parse_head(ARGV[i])
  if exec == '-' then
    exec = now
  end
  local payload, ikey, headers = ARGV[i + 1], ARGV[i + 2], ARGV[i + 4]
  if step and step.prior then
    out[#out + 1] = step.prior
  else
    local jk = P .. 'j:' .. id
    -- A new job omits what it can derive (updated = created, attempts = 0):
    -- most of a pending job's memory is its field list.
    local fields = {'t', jtype, 'p', payload, 's', 1, 'e', exec, 'c', now}
    if max_attempts ~= '' then
      fields[#fields + 1] = 'm'
      fields[#fields + 1] = max_attempts
    end
    if headers ~= '' then
      fields[#fields + 1] = 'h'
      fields[#fields + 1] = headers
    end
    if prio ~= '' then
      fields[#fields + 1] = 'pr'
      fields[#fields + 1] = prio
    end
    if lkey ~= '' then
      fields[#fields + 1] = 'lk'
      fields[#fields + 1] = lkey
    end
    if ikey ~= '' then
      fields[#fields + 1] = 'k'
      fields[#fields + 1] = ikey
      -- No expiry yet: the key must live as long as the job does.
      redis.call('SET', kkey(P, jtype, ikey), id)
    end
    local lock = step and step.lock
    if lock then
      fields[#fields + 1] = 'uk'
      fields[#fields + 1] = lock[1]
      fields[#fields + 1] = 'uq'
      fields[#fields + 1] = lock[2]
      -- Released by the step that moves the job out of its scope (claim.lua,
      -- finish in _common.lua); a debounce also lapses after its window.
      if lock[3] then
        redis.call('SET', ukey(P, jtype, lock[1]), id, 'PX', lock[3])
      else
        redis.call('SET', ukey(P, jtype, lock[1]), id)
      end
      if step.replace then
        replaced[#replaced + 1] = {step.replace, id}
      end
    end
    redis.call('HSET', jk, unpack(fields))
    local q
    if lkey ~= '' then
      q = enqueue_keyed(P, jtype, lkey, exec, id)
      keyed[jtype] = (keyed[jtype] or 0) + 1
    else
      q = qkey(P, jtype, prio)
      local members = queued[q]
      if not members then
        members = {jtype = jtype, prio = prio}
        queued[q] = members
      end
      members[#members + 1] = exec
      members[#members + 1] = id
    end
    local due = tonumber(exec)
    local earliest = due_types[jtype]
    if not earliest or due < earliest.due then
      due_types[jtype] = { id = id, due = due, q = q }
    end
    out[#out + 1] = id
  end
end
-- One ZADD per type and chunk: a call per job costs more than the insert.
for q, members in pairs(queued) do
  local jtype = members.jtype
  if members.prio ~= '' then
    redis.call('ZADD', P .. 'pl:' .. jtype, -tonumber(members.prio), members.prio)
  end
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
for jtype, n in pairs(keyed) do
  count(P, jtype, 'enqueued', n)
  redis.call('ZADD', KEYS[1], 0, jtype)
  redis.call('ZADD', P .. 'ts:1', 0, jtype)
end
-- One token wakes one blocked worker; a worker that finds more work than it
-- can take passes the token on (see claim.lua), so one token per type suffices.
for jtype, earliest in pairs(due_types) do
  wake_for(P, jtype, earliest.id, earliest.due, now, earliest.q)
end
-- A replaced holder ends CANCELLED, naming the job that took its key (the
-- key names the successor already, so finish leaves it).
if #replaced > 0 then
  local _, cap = config(P)
  for _, pair in ipairs(replaced) do
    local holder, successor = pair[1], pair[2]
    local hk = P .. 'j:' .. holder
    local hf = redis.call('HMGET', hk, 's', 't', 'pr', 'lk')
    if hf[1] == '1' then
      -- Its priority level goes with its last job, as a claim's would.
      dequeue(P, hf[2], hf[3], hf[4], holder)
      redis.call('HSET', hk, 'err', 'replaced by job ' .. successor)
      finish(P, hk, holder, hf[2], 5, now, retention(), cap)
    end
  end
end
if batch ~= '' then
  -- It expires no later than any of its jobs, which outlive their finish.
  redis.call('SET', P .. 'b:' .. batch, now .. ':' .. table.concat(out, ',', 2), 'PX', retention())
end
return out
