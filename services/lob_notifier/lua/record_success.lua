-- record_success.lua: after a webhook answered 2xx, moves the position past the
-- batch (lease holder only).
-- KEYS: 1 the lease, 2 the subscriber's hash, 3 its replay list
-- ARGV: 1 the lease's owner, 2 now (ms), 3 new cursor ('' for a replayed
--       batch: pop it instead), 4 the cursor the batch was read after,
--       5 events delivered
-- Returns: 1 when recorded, 0 when the lease is lost or the subscriber gone.

-- include: lease_held.lua
-- include: move_past.lua

if not lease_held() then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
move_past(KEYS[2], KEYS[3], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[2], 'last_success_ms', ARGV[2], 'last_attempt_ms', ARGV[2],
           'failures', 0, 'failures_key', '', 'next_attempt_ms', 0)
redis.call('HINCRBY', KEYS[2], 'delivered', ARGV[5])
return 1
