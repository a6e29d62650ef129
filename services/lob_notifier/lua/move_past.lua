-- move_past.lua (included): move_past(hash, replay, new_cursor, read_after)
-- moves a subscriber past a batch it is done with: a replayed batch (new_cursor
-- '') leaves the replay list; otherwise the position moves to new_cursor,
-- unless someone moved it since the batch was read (SeekSubscriber wins).
-- KEYS: none of its own (the subscriber's hash and replay list are passed in)
-- ARGV: none of its own
-- Returns: nothing; defines the local function move_past.

local function move_past(hash, replay, new_cursor, read_after)
  if new_cursor == '' then
    redis.call('LPOP', replay)
  elseif redis.call('HGET', hash, 'cursor') == read_after then
    redis.call('HSET', hash, 'cursor', new_cursor)
  end
end
