-- reserve_units.lua: reserves Graph resource units on the budget shared by
-- every extender replica (a generic cell rate algorithm: the key holds the
-- theoretical arrival time, in microseconds of Redis's clock).
-- KEYS: 1 the budget's theoretical arrival time
-- ARGV: 1 units, 2 microseconds per unit, 3 burst allowance in microseconds,
--       4 extra pause in microseconds (after a 429) applied before reserving,
--       5 '1' to reserve only if the units may go at once
-- Returns: the microseconds to wait before using the units; with ARGV[5] '1'
--          and units that may not go at once, nothing is reserved and the
--          answer, negative, is minus the microseconds to wait before asking
--          again.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local pause = tonumber(ARGV[4])
-- A pause holds everyone back in full: the burst allowance does not shorten it.
local hold = now + pause + tonumber(ARGV[3])
if pause > 0 and tat < hold then tat = hold end
local new_tat = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
local wait = new_tat - now - tonumber(ARGV[3])
if wait < 0 then wait = 0 end
if ARGV[5] == '1' and wait > 0 then
  if pause > 0 then
    local hold_ms = math.floor((tat - now) / 1000) + 60000
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', hold_ms)
  end
  return -math.max(1, math.floor(wait))
end
local ttl_ms = math.floor((new_tat - now) / 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return math.floor(wait)
