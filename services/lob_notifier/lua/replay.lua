-- replay.lua: moves dead letters to the replay queue, in the order given.
-- Replay items are '<dead letter id> <delivery id> <first> <last> <count>':
-- none of these contains a space.
-- KEYS: 1 the subscriber's hash, 2 its dead-letter stream, 3 its replay list
-- ARGV: the dead letters' ids, or none for all
-- Returns: {queued, the ids not found...}, or {-1} when there is no such
--          subscriber.

local unpack = unpack or table.unpack
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local function item(entry)
  local f = {}
  for i = 1, #entry[2], 2 do f[entry[2][i]] = entry[2][i + 1] end
  return table.concat({entry[1], f['delivery_id'] or '', f['first'] or '', f['last'] or '',
                       f['count'] or '0'}, ' ')
end
local queued, missing = 0, {}
if #ARGV == 0 then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
    redis.call('RPUSH', KEYS[3], item(entry))
    queued = queued + 1
  end
  redis.call('DEL', KEYS[2])
else
  for _, id in ipairs(ARGV) do
    local found = redis.call('XRANGE', KEYS[2], id, id)
    if #found == 0 then
      table.insert(missing, id)
    else
      redis.call('RPUSH', KEYS[3], item(found[1]))
      redis.call('XDEL', KEYS[2], id)
      queued = queued + 1
    end
  end
end
return {queued, unpack(missing)}
