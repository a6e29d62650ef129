-- admit_write.lua: takes a place for one Graph write in the sliding window of
-- the app's write quota, shared by every extender replica.
-- KEYS: 1 sorted set of admitted writes, scored by time in microseconds
-- ARGV: 1 window in microseconds, 2 writes allowed in a window, 3 a unique
--       member for this write
-- Returns: 0 when admitted (and logged), otherwise the microseconds until the
--          oldest write that keeps the window full leaves it.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
-- Times as %.0f: Lua would write a 16-digit number in exponent form.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.ceil(window / 1000)))
  return 0
end
local freeing = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
return math.max(1, tonumber(freeing[2]) + window - now)
