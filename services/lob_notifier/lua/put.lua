-- put.lua: creates a subscriber (at a start cursor) or replaces its settings.
-- KEYS: 1 the subscriber's hash, 2 the set of subscriber names
-- ARGV: 1 name, 2 url, 3 secret ('' keeps the current one), 4 source,
--       5 now (ms), 6 start cursor, 7 max subscribers, 8 owner (kept from
--       creation on), 9 the envelope version written on creation
-- Returns: 1 when created, 0 when replaced, -1 when creating one more would
--          pass the maximum.

local created = redis.call('EXISTS', KEYS[1]) == 0
if created then
  if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[7]) then return -1 end
  redis.call('HSET', KEYS[1], 'v', ARGV[9], 'created_ms', ARGV[5], 'cursor', ARGV[6],
             'owner', ARGV[8])
end
redis.call('HSET', KEYS[1], 'url', ARGV[2], 'source', ARGV[4])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'secret')
elseif ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'secret', ARGV[3])
end
redis.call('SADD', KEYS[2], ARGV[1])
if created then return 1 end
return 0
