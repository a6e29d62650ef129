-- last_id.lua (included): last_id(stream), the stream's newest entry id, or,
-- once trimming has emptied the stream, the last id it generated (which Redis
-- keeps); '0-0' when there is no stream.
-- KEYS: none of its own (the stream is passed in)
-- ARGV: none of its own
-- Returns: nothing; defines the local function last_id.

local function last_id(stream)
  local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #newest > 0 then return newest[1][1] end
  if redis.call('EXISTS', stream) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end
