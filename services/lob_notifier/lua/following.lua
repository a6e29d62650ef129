-- following.lua: what follows a cursor, for gap checks and lag.
-- KEYS: 1 the stream, 2 the sequence counter
-- ARGV: 1 the cursor
-- Returns: {id, prev, seq of the first entry after the cursor ('' each when
--          there is none), the stream's last id (last_id.lua), how many events
--          were ever appended}

-- include: last_id.lua

local appended = redis.call('GET', KEYS[2]) or '0'
if redis.call('EXISTS', KEYS[1]) == 0 then return {'', '', '', '', appended} end
local found = redis.call('XREAD', 'COUNT', 1, 'STREAMS', KEYS[1], ARGV[1])
local id, prev, seq = '', '', ''
-- Real Redis answers nil when nothing follows; some compatible servers an empty array.
if found and #found > 0 and #found[1][2] > 0 then
  local entry = found[1][2][1]
  id = entry[1]
  for i = 1, #entry[2], 2 do
    if entry[2][i] == 'prev' then prev = entry[2][i + 1] end
    if entry[2][i] == 'seq' then seq = entry[2][i + 1] end
  end
end
return {id, prev, seq, last_id(KEYS[1]), appended}
