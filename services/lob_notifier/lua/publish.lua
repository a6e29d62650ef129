-- publish.lua: appends a batch of events to the change log in one call, each
-- whose id is not yet known, in order, and remembers the id. A script runs
-- atomically, so a crash or a lost connection leaves either both the entry and
-- its dedupe key or neither. The entry is appended before the dedupe key is
-- written: if a command were ever to fail mid-script (Redis does not roll
-- scripts back), the worst case is an event logged twice on retry, never an
-- event marked seen but not logged.
-- KEYS: 1 the stream, 2 the sequence counter, 2 + i the dedupe key of event i
-- ARGV: 1 dedupe ttl (s), 2 max stream length, 3 max age (ms, 0: none),
--       2i + 2 and 2i + 3 event i's id and serialized event
-- Returns: {accepted, duplicates, the newest entry's id ('' if none)}

-- include: last_id.lua
-- include: trim_by_age.lua

local accepted, duplicates = 0, 0
local prev = last_id(KEYS[1])
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local seq = redis.call('INCR', KEYS[2])
    local id = redis.call('XADD', KEYS[1], '*', 'event_id', ARGV[2 * i - 2],
                          'event', ARGV[2 * i - 1], 'prev', prev, 'seq', seq)
    redis.call('SET', KEYS[i], id, 'EX', ARGV[1])
    prev = id
    accepted = accepted + 1
  else
    duplicates = duplicates + 1
  end
end
if accepted > 0 then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2])
  trim_by_age(KEYS[1], tonumber(ARGV[3]))
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local cursor = ''
if #newest > 0 then cursor = newest[1][1] end
return {accepted, duplicates, cursor}
