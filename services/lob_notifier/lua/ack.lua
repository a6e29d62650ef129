-- ack.lua: moves a subscriber's position forward (never back).
-- KEYS: 1 the subscriber's hash
-- ARGV: 1 the cursor, 2 now (ms)
-- Returns: 1 when moved, 0 when the cursor is not after the position, -1 when
--          there is no such subscriber.

-- include: less.lua

if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local current = redis.call('HGET', KEYS[1], 'cursor') or '0-0'
if less(current, ARGV[1]) then
  redis.call('HSET', KEYS[1], 'cursor', ARGV[1], 'last_success_ms', ARGV[2])
  return 1
end
return 0
