-- seek.lua: moves a subscriber's position anywhere, clearing its failures.
-- KEYS: 1 the subscriber's hash
-- ARGV: 1 the cursor
-- Returns: 1 when moved, 0 when there is no such subscriber.

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'cursor', ARGV[1], 'failures', 0, 'failures_key', '',
           'next_attempt_ms', 0)
return 1
