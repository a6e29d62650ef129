-- renew_if_owner.lua: extends a lock or lease only while it is still ours.
-- KEYS: 1 the lock
-- ARGV: 1 the owner, 2 the new time to live (ms)
-- Returns: 1 when renewed, 0 when the lock is not (or no longer) the owner's.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
