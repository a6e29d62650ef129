-- forget_unchanged.lua: removes hash entries only if each still holds the value
-- the run saw: the LOB app may have written again since.
-- KEYS: 1 the hash
-- ARGV: pairs of field and the value seen
-- Returns: 0

for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 0
