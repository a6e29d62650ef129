-- oldest.lua: the change log's oldest retained entry.
-- KEYS: 1 the stream
-- ARGV: none
-- Returns: {the first entry's id, its prev}, or {} when the stream is empty.

local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #oldest == 0 then return {} end
local prev = ''
for i = 1, #oldest[1][2], 2 do
  if oldest[1][2][i] == 'prev' then prev = oldest[1][2][i + 1] end
end
return {oldest[1][1], prev}
