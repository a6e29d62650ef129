-- lease_held.lua (included): lease_held(), whether the caller still holds the
-- subscriber's lease (services/lob_notifier/lease.py), so a replica that lost
-- it mid-request cannot record anything afterwards.
-- KEYS: 1 the lease (the including script's)
-- ARGV: 1 the lease's owner (the including script's)
-- Returns: nothing; defines the local function lease_held.

local function lease_held()
  return redis.call('GET', KEYS[1]) == ARGV[1]
end
