-- trim.lua: drops the change log's entries older than the age limit, for a log
-- nobody publishes to (appends trim as they go).
-- KEYS: 1 the stream
-- ARGV: 1 max age (ms, 0: none)
-- Returns: the stream's length afterwards.

-- include: trim_by_age.lua

if redis.call('EXISTS', KEYS[1]) == 1 then trim_by_age(KEYS[1], tonumber(ARGV[1])) end
return redis.call('XLEN', KEYS[1])
