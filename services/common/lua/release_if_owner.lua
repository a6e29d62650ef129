-- release_if_owner.lua: deletes a lock or lease only while it is still ours
-- (one that expired and was taken by another holder stays theirs).
-- KEYS: 1 the lock
-- ARGV: 1 the owner
-- Returns: 1 when deleted, 0 when the lock is not (or no longer) the owner's.

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
