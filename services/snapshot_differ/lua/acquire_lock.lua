-- acquire_lock.lua: takes a free shard lock, or takes over one reserved under
-- our own name (a run started as a Kubernetes Job finds the lock StartSync
-- reserved for it).
-- KEYS: 1 the lock
-- ARGV: 1 the owner (the run's id), 2 time to live (ms)
-- Returns: 1 when taken, 0 when another owner holds it.

if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
