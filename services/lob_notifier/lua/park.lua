-- park.lua: dead-letters a batch (by its cursor range) and moves past it
-- (lease holder only).
-- KEYS: 1 the lease, 2 the subscriber's hash, 3 its dead-letter stream,
--       4 its replay list
-- ARGV: 1 the lease's owner, 2 now (ms), 3 new cursor ('' for a replayed
--       batch), 4 the cursor the batch was read after, 5 error, 6 dead-letter
--       max, 7 delivery id, 8 first cursor, 9 last cursor, 10 event count,
--       11 attempts
-- Returns: the dead letter's id, or 0 when the lease is lost or the
--          subscriber gone.

-- include: lease_held.lua
-- include: move_past.lua

if not lease_held() then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*',
                      'delivery_id', ARGV[7], 'first', ARGV[8], 'last', ARGV[9],
                      'count', ARGV[10], 'attempts', ARGV[11], 'error', ARGV[5],
                      'park_ms', ARGV[2])
move_past(KEYS[2], KEYS[4], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[2], 'last_attempt_ms', ARGV[2], 'last_error', ARGV[5],
           'last_error_ms', ARGV[2], 'failures', 0, 'failures_key', '', 'next_attempt_ms', 0)
return id
