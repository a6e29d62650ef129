-- read_entries.lua: reads a bounded batch of entries for a search
-- (services/search/evaluate.py sizes the batches by the entries' counts). Only reads.
-- KEYS: 1 the index's CURRENT key, unused: it routes the call to the index's
--       slot on a Redis Cluster (every key of the index shares one hash tag)
-- ARGV: 1 generation key prefix, then per entry '<field>:<entry>' and '1' when
--       its whole-value bitmap is wanted ('0' otherwise)
-- Returns: three values per entry: its membership bitmap (false while it is a
--          set), its whole-value bitmap (false if not wanted or none), and the
--          set's members comma separated ('' for a bitmap or no entry).

local base = ARGV[1]
local out = {}
for i = 2, #ARGV, 2 do
  local key, whole = ARGV[i], ARGV[i + 1] == '1'
  local m = redis.call('GET', base .. 'm:' .. key)
  if m then
    out[#out + 1] = m
    out[#out + 1] = whole and redis.call('GET', base .. 'x:' .. key) or false
    out[#out + 1] = ''
  else
    out[#out + 1] = false
    out[#out + 1] = false
    out[#out + 1] = table.concat(redis.call('SMEMBERS', base .. 's:' .. key), ',')
  end
end
return out
