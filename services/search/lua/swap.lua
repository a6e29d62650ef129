-- swap.lua: makes a finished rebuild the live index.
-- KEYS: 1 generation being built, 2 current generation, 3 epoch
-- ARGV: 1 the rebuilt generation, 2 its touched set
-- Returns: the replaced generation ('' if none), or false when the rebuild no
--          longer holds its lease.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local old = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[3])
return old or ''
