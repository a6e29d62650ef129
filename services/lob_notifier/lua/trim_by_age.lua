-- trim_by_age.lua (included): trim_by_age(stream, max_age_ms) drops the entries
-- older than max_age_ms (none when it is 0). Entry ids start with Redis's own
-- clock, so the age cut is taken from it too (not from the notifier's clock,
-- which may differ).
-- KEYS: none of its own (the stream is passed in)
-- ARGV: none of its own
-- Returns: nothing; defines the local function trim_by_age.

local function trim_by_age(stream, max_age_ms)
  if max_age_ms <= 0 then return end
  local now = redis.call('TIME')
  local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - max_age_ms
  if cutoff > 0 then
    redis.call('XTRIM', stream, 'MINID', '~', string.format('%.0f', cutoff) .. '-0')
  end
end
