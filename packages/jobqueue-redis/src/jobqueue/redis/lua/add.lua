-- Store new PENDING jobs, all in one step.
-- KEYS: tz, cfg, ts:1, ct of the shard (KEYS[1] routes the call to the shard's slot).
-- ARGV: prefix, the batch key or '', then per job a head and the payload, and
-- after them only the options the head names. The head is "id type
-- execution_time|'-' max_attempts|'' [priority]" (four words, a fifth for a
-- nonzero priority, none of which can hold a space; '-' means due now), then,
-- for a job with a limit key or an option, a tab, the limit key or '' (a key
-- holds no whitespace), a tab and its option letters, in this order: 'k' the
-- idempotency key follows, 'u' the unique rule "scope policy window_ms key"
-- follows (its lock is ukey(type, key) -> the holder's id: keys are per job
-- type), 'h' the headers follow as a JSON object (stored as is in field 'h').
-- A plain job is two arguments: what Redis parses and Lua steps over per job
-- is most of a bulk add's cost. A conflict that rejects
-- returns {'unique', key, holder id} and stores nothing. Creation and "now" are Redis's time, not the caller's.
-- Returns the time it used, then, per job, the id stored under it: its own,
-- or the id of the job an idempotency key already named. A known batch key
-- returns the ids its first call stored instead, unless one of those jobs is gone.
local P = ARGV[1]
local now = clock_ms()
local stamp = int(now) -- `now` as the job hashes store it (see int)
local batch = ARGV[2]

-- A job's head: its words, then its limit key ('' for none) and option letters.
local function parse_head(text)
  return string.match(text, '^(%S+) (%S+) (%S+) (%d*) ?(%-?%d*)\t?([^\t]*)\t?(%l*)$')
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
local heads = {} -- per job: where its head is in ARGV
local njobs = 0
local i, nargs = 3, #ARGV
while i <= nargs do
  njobs = njobs + 1
  heads[njobs] = i
  local head = ARGV[i]
  -- No tab: no limit key and no option (the hot path, decided without a pattern).
  local letters = string.find(head, '\t', 1, true) and string.match(head, '\t[^\t]*\t(%l*)$')
  i = i + 2
  if not letters or letters == '' then
    plan[njobs] = false -- a plain new job: nothing to decide
  else
    local ikey, spec, headers = '', '', ''
    if string.find(letters, 'k', 1, true) then
      ikey = ARGV[i]
      i = i + 1
    end
    if string.find(letters, 'u', 1, true) then
      spec = ARGV[i]
      i = i + 1
    end
    if string.find(letters, 'h', 1, true) then
      headers = ARGV[i]
      i = i + 1
    end
    local id, jtype = string.match(head, '^(%S+) (%S+)')
    local step = {prior = false, ikey = ikey, headers = headers}
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
    plan[njobs] = step
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
for j = 1, PROBE and njobs or 0 do -- (nothing to list where nothing is probed)
  local step = plan[j]
  if not (step and step.prior) then
    local id, jtype, _, _, prio, lkey = parse_head(ARGV[heads[j]])
    will_write(P .. 'j:' .. id)
    if lkey ~= '' then
      for _, key in ipairs(keyed_keys(P, jtype, lkey)) do
        will_write(key)
      end
      will_write(P .. 'w:' .. jtype)
    end
    if step and step.ikey ~= '' then
      will_write(kkey(P, jtype, step.ikey))
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
-- type -> priority -> ZADD arguments (due, id, due, id ...): looked up by
-- the head's own strings, so a job builds no queue key of its own.
local queued = {}
local replaced = {} -- PENDING holders a REPLACE took the key from
local added = {} -- type -> its new jobs (one counter increment per type)
local keyed = {} -- type -> true once a keyed job (each in its key's queue, not `queued`) came
local nout = 1
for j = 1, njobs do
  local step = plan[j]
  local i = heads[j]
  local id, jtype, exec, max_attempts, prio, lkey = parse_head(ARGV[i])
  if exec == '-' then
    exec = stamp
  end
  nout = nout + 1
  if step and step.prior then
    out[nout] = step.prior
  else
    local jk = P .. 'j:' .. id
    -- A new job omits what it can derive (updated = created, attempts = 0):
    -- most of a pending job's memory is its field list.
    if not step and prio == '' and lkey == '' then
      -- A plain job: the same fields in the same order, with no table to build.
      if max_attempts ~= '' then
        redis.call('HSET', jk, 't', jtype, 'p', ARGV[i + 1], 's', 1, 'e', exec, 'c', stamp, 'm', max_attempts)
      else
        redis.call('HSET', jk, 't', jtype, 'p', ARGV[i + 1], 's', 1, 'e', exec, 'c', stamp)
      end
    else
      local ikey, headers = '', ''
      if step then
        ikey, headers = step.ikey, step.headers
      end
      local fields = {'t', jtype, 'p', ARGV[i + 1], 's', 1, 'e', exec, 'c', stamp}
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
          redis.call('SET', ukey(P, jtype, lock[1]), id, 'PX', int(lock[3]))
        else
          redis.call('SET', ukey(P, jtype, lock[1]), id)
        end
        if step.replace then
          replaced[#replaced + 1] = {step.replace, id}
        end
      end
      redis.call('HSET', jk, unpack(fields))
    end
    added[jtype] = (added[jtype] or 0) + 1
    local q = false -- an unkeyed job's queue is named only if a wake needs it
    if lkey ~= '' then
      q = enqueue_keyed(P, jtype, lkey, exec, id)
      keyed[jtype] = true
    else
      local levels = queued[jtype]
      if not levels then
        levels = {}
        queued[jtype] = levels
      end
      local members = levels[prio]
      if not members then
        members = {n = 0}
        levels[prio] = members
      end
      local n = members.n
      members[n + 1] = exec
      members[n + 2] = id
      members.n = n + 2
    end
    local due = tonumber(exec)
    local earliest = due_types[jtype]
    if not earliest or due < earliest.due then
      due_types[jtype] = {id = id, due = due, q = q, prio = prio}
    end
    out[nout] = id
  end
end
for jtype, n in pairs(added) do
  count(P, jtype, 'enqueued', n)
  -- A queue that held jobs already is in both indexes (they drop a type only
  -- once its queue is gone): only a type a queue of this call started, or a
  -- keyed job came for, needs adding.
  local indexed = keyed[jtype]
  -- One ZADD per queue and chunk: a call per job costs more than the insert.
  for prio, members in pairs(queued[jtype] or {}) do
    local q = qkey(P, jtype, prio)
    if prio ~= '' then
      redis.call('ZADD', P .. 'pl:' .. jtype, -tonumber(prio), prio)
    end
    for k = 1, members.n, 1000 do
      redis.call('ZADD', q, unpack(members, k, math.min(k + 999, members.n)))
    end
    if not indexed and redis.call('ZCARD', q) == members.n / 2 then
      indexed = true
    end
  end
  if indexed then
    redis.call('ZADD', KEYS[1], 0, jtype)
    redis.call('ZADD', P .. 'ts:1', 0, jtype)
  end
end
-- One token wakes one blocked worker; a worker that finds more work than it
-- can take passes the token on (see claim.lua), so one token per type suffices.
for jtype, earliest in pairs(due_types) do
  wake_for(P, jtype, earliest.id, earliest.due, now, earliest.q or qkey(P, jtype, earliest.prio))
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
  redis.call('SET', P .. 'b:' .. batch, now .. ':' .. table.concat(out, ',', 2), 'PX', int(retention()))
end
return out
