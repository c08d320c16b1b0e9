-- A page of jobs in listing order: status, then type name, then position (due
-- time, lease deadline or finish time), then id. Without a type filter it
-- walks 'ts:' .. status, the types that may hold jobs of that status, and
-- prunes the ones found empty: a page costs in proportion to its size, not to
-- the number of types ever seen.
-- KEYS: tz, cfg, ts:1 to ts:5 of the shard. ARGV: prefix, want, statuses (comma-separated,
-- ascending), type or '', then the cursor or nothing: status, type, position, id.
-- Returns {status, type, position, id, fields, ...}, up to `want` jobs.
local P = ARGV[1]
local want = tonumber(ARGV[2])
local only_type = ARGV[4]
local c_status, c_type, c_pos, c_id = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]), ARGV[8]
local now = clock_ms()
local horizon = now - config(P)
local out = {}
local found = 0

local function index_key(status, jtype)
  if status == 1 then
    return P .. 'q:' .. jtype
  elseif status == 2 then
    return P .. 'r:' .. jtype
  end
  return P .. 'd:' .. jtype .. ':' .. status
end

-- Append up to `want - found` jobs of one (status, type) index; `after` is
-- true when the cursor points inside this index.
local function scan(status, jtype, after)
  local key = index_key(status, jtype)
  local rank = 0
  if status > 2 then
    -- Finished past their retention wait for the sweep: never list them.
    rank = redis.call('ZCOUNT', key, '-inf', horizon)
  end
  if after then
    local score = redis.call('ZSCORE', key, c_id)
    if score and tonumber(score) == c_pos then
      rank = math.max(rank, redis.call('ZRANK', key, c_id) + 1)
    else
      -- The cursor's job moved on: start at its position, skip ties up to its id.
      rank = math.max(rank, redis.call('ZCOUNT', key, '-inf', '(' .. c_pos))
    end
  end
  while found < want do
    local batch = redis.call('ZRANGE', key, int(rank), int(rank + (want - found) - 1), 'WITHSCORES')
    if #batch == 0 then
      return
    end
    rank = rank + #batch / 2
    for i = 1, #batch, 2 do
      local id, pos = batch[i], tonumber(batch[i + 1])
      if not after or pos > c_pos or (pos == c_pos and id > c_id) then
        local fields = redis.call('HGETALL', P .. 'j:' .. id)
        if #fields > 0 then
          found = found + 1
          out[#out + 1] = status
          out[#out + 1] = jtype
          out[#out + 1] = pos
          out[#out + 1] = id
          out[#out + 1] = fields
        end
      end
    end
  end
end

-- PENDING jobs of a type with priorities are in one queue per priority
-- (queues in _common.lua), each by due time: merge them into one due order,
-- taking from whichever queue holds the next (position, id). Without
-- priorities it is scan's single queue.
local function scan_pending(jtype, after)
  local qs = all_queues(P, jtype)
  if #qs == 1 then
    return scan(1, jtype, after)
  end
  local ranks = {}
  for i, q in ipairs(qs) do
    local rank = 0
    if after then
      local score = redis.call('ZSCORE', q, c_id)
      if score and tonumber(score) == c_pos then
        rank = redis.call('ZRANK', q, c_id) + 1
      else
        rank = redis.call('ZCOUNT', q, '-inf', '(' .. c_pos)
      end
    end
    ranks[i] = rank
  end
  while found < want do
    -- The next (position, id) of each queue after the cursor; the least goes.
    local best, best_pos, best_id = nil, nil, nil
    for i, q in ipairs(qs) do
      while true do
        local at = int(ranks[i])
        local head = redis.call('ZRANGE', q, at, at, 'WITHSCORES')
        if #head == 0 then
          break
        end
        local id, pos = head[1], tonumber(head[2])
        if not after or pos > c_pos or (pos == c_pos and id > c_id) then
          if not best or pos < best_pos or (pos == best_pos and id < best_id) then
            best, best_pos, best_id = i, pos, id
          end
          break
        end
        ranks[i] = ranks[i] + 1
      end
    end
    if not best then
      return
    end
    ranks[best] = ranks[best] + 1
    local fields = redis.call('HGETALL', P .. 'j:' .. best_id)
    if #fields > 0 then
      found = found + 1
      out[#out + 1] = 1
      out[#out + 1] = jtype
      out[#out + 1] = best_pos
      out[#out + 1] = best_id
      out[#out + 1] = fields
    end
  end
end

local function scan_index(status, jtype, after)
  if status == 1 then
    return scan_pending(jtype, after)
  end
  return scan(status, jtype, after)
end

for status_text in string.gmatch(ARGV[3], '%d+') do
  local status = tonumber(status_text)
  if found >= want then
    break
  end
  if not c_status or status >= c_status then
    local on_cursor = c_status == status
    if only_type ~= '' then
      if not on_cursor or only_type >= c_type then
        scan_index(status, only_type, on_cursor and only_type == c_type)
      end
    else
      local ts = P .. 'ts:' .. status
      local from = '-'
      if on_cursor then
        from = '[' .. c_type
      end
      while found < want do
        local types = redis.call('ZRANGE', ts, from, '+', 'BYLEX', 'LIMIT', 0, 100)
        if #types == 0 then
          break
        end
        for _, jtype in ipairs(types) do
          if found >= want then
            break
          end
          local exists = redis.call('EXISTS', index_key(status, jtype))
          if status == 1 and exists == 0 then
            exists = redis.call('EXISTS', P .. 'pl:' .. jtype, P .. 'qk:' .. jtype)
          end
          if exists == 0 then
            redis.call('ZREM', ts, jtype)
          else
            scan_index(status, jtype, on_cursor and jtype == c_type)
          end
        end
        from = '(' .. types[#types]
      end
    end
  end
end
return out
