-- record_failure.lua: after a failed delivery, records the error and when to
-- try again (lease holder only).
-- KEYS: 1 the lease, 2 the subscriber's hash
-- ARGV: 1 the lease's owner, 2 now (ms), 3 error, 4 failures, 5 failures_key,
--       6 next attempt (ms)
-- Returns: 1 when recorded, 0 when the lease is lost or the subscriber gone.

-- include: lease_held.lua

if not lease_held() then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'last_attempt_ms', ARGV[2], 'last_error', ARGV[3],
           'last_error_ms', ARGV[2], 'failures', ARGV[4], 'failures_key', ARGV[5],
           'next_attempt_ms', ARGV[6])
return 1
