-- less.lua (included): less(a, b), whether cursor a comes before cursor b.
-- Ids are normalized decimal text ('<ms>-<seq>' without leading zeros),
-- compared by length first, then by text, so no number ever goes through
-- Lua's doubles.
-- KEYS: none of its own
-- ARGV: none of its own
-- Returns: nothing; defines the local function less.

local function parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms or '0', seq or '0'
end
local function less_digits(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function less(a, b)
  local am, as = parts(a)
  local bm, bs = parts(b)
  if am ~= bm then return less_digits(am, bm) end
  return as ~= bs and less_digits(as, bs)
end
