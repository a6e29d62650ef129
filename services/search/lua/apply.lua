-- apply.lua: files a batch of profiles in the search index (adds, changes, deletes),
-- atomically, so two writers (the differ committing a run, the extender after
-- an edit) cannot interleave. The only place that derives which entries a
-- profile is filed under, so adding and removing them can never disagree.
-- KEYS: 1 current generation, 2 generation being built, 3 epoch, 4 generation
--       counter, 5 profile number counter
-- ARGV: 1 generation key prefix, 2 mode: 'live' | 'build',
--       3 generation being built ('build'), 4 build lease (ms),
--       5 field count F, then F field names (the order of the texts),
--       then per profile: 'U', id, digest, json, F analysed texts | 'D', id
-- Returns: {written, unchanged, deleted, missing}, or {'lost'} when a rebuild
--          no longer holds its lease.
--
-- Storage of one entry (a field and a word, an adjacent word pair, or a whole
-- value of three or more words), by how many profiles have it:
--
--     few   s:<field>:<entry>   set of 2*doc + whole (integers: compact intsets)
--     many  m:<field>:<entry>   bitmap of docs having it
--           x:<field>:<entry>   bitmap of docs having it as a whole value
--
-- A profile's number is its bit position. Each entry a batch touches is
-- written once, at the batch's end (its count, then its set or bitmaps), so
-- the many profiles that share an entry cost one command, not one each.

local prefix, mode, build_gen = ARGV[1], ARGV[2], ARGV[3]
local lease = tonumber(ARGV[4])
local nf = tonumber(ARGV[5])
local fields = {}
for i = 1, nf do fields[i] = ARGV[5 + i] end

-- Entries move between a set and bitmaps as they grow and shrink; the
-- switch point follows the number of documents (bitmap size).
local docs_seen = tonumber(redis.call('GET', KEYS[5]) or '0')
local dense_above = math.max(256, math.floor(docs_seen / 128))
local sparse_below = math.floor(dense_above / 4)

-- {field .. ':' .. entry -> level}: 2 when the entry is a whole value of the
-- field (the skill "Kubernetes" itself), 1 when it is inside a value.
local function derive(texts)
  local entries = {}
  for i = 1, nf do
    local text = texts[i]
    if text ~= '' then
      local f = fields[i]
      for item in string.gmatch(text, '| ([^|]+) ') do
        local toks = {}
        for tok in string.gmatch(item, '%S+') do toks[#toks + 1] = tok end
        local n = #toks
        for j = 1, n do
          local key = f .. ':w:' .. toks[j]
          local level = (n == 1) and 2 or 1
          if (entries[key] or 0) < level then entries[key] = level end
          if j < n then
            key = f .. ':b:' .. toks[j] .. ' ' .. toks[j + 1]
            level = (n == 2) and 2 or 1
            if (entries[key] or 0) < level then entries[key] = level end
          end
        end
        if n >= 3 and f ~= 'aboutMe' then entries[f .. ':v:' .. item] = 2 end
      end
    end
  end
  return entries
end

-- Redis commands take their arguments through Lua's stack: at most this many
-- values go into one call. Even, so a chunk of HSET's field-value pairs never
-- splits a pair.
local CHUNK = 1000

-- Runs `cmd key items...` in chunks of CHUNK items (SADD, SREM, ZADD ...).
local function variadic(cmd, key, items)
  for i = 1, #items, CHUNK do
    redis.call(cmd, key, unpack(items, i, math.min(i + CHUNK - 1, #items)))
  end
end

-- Hash fields the batch writes (a profile's number, digest, JSON and texts)
-- are kept here and written at the batch's end, one HSET and one HDEL per
-- hash; reads go through `hget`, so the batch sees its own writes (a profile
-- named twice, a number freed and taken again).
-- written[hash][field] = value, or false once deleted.
local written = {}

local function hset(hash, field, value)
  local fields_of = written[hash]
  if not fields_of then
    fields_of = {}
    written[hash] = fields_of
  end
  fields_of[field] = value
end

local function hget(hash, field)
  local fields_of = written[hash]
  if fields_of and fields_of[field] ~= nil then return fields_of[field] end
  return redis.call('HGET', hash, field)
end

local function write_hashes()
  for hash, fields_of in pairs(written) do
    local pairs_, gone = {}, {}
    for field, value in pairs(fields_of) do
      if value then
        pairs_[#pairs_ + 1] = field
        pairs_[#pairs_ + 1] = value
      else
        gone[#gone + 1] = field
      end
    end
    variadic('HSET', hash, pairs_)
    variadic('HDEL', hash, gone)
  end
end

local function stored_texts(base, d)
  local texts = {}
  for i = 1, nf do texts[i] = hget(base .. 't:' .. fields[i], d) or '' end
  return texts
end

-- Sets bits of a bitmap, one BITFIELD per CHUNK of them: bits = {doc, value, ...}.
local function set_bits(key, bits)
  for i = 1, #bits, 2 * CHUNK do
    local args = {}
    for j = i, math.min(i + 2 * CHUNK - 1, #bits), 2 do
      args[#args + 1] = 'SET'
      args[#args + 1] = 'u1'
      args[#args + 1] = bits[j]
      args[#args + 1] = bits[j + 1]
    end
    redis.call('BITFIELD', key, unpack(args))
  end
end

local function promote(base, key)
  local s = base .. 's:' .. key
  local member, whole = {}, {}
  for _, v in ipairs(redis.call('SMEMBERS', s)) do
    local n = tonumber(v)
    local d = math.floor(n / 2)
    member[#member + 1] = d
    member[#member + 1] = 1
    if n % 2 == 1 then
      whole[#whole + 1] = d
      whole[#whole + 1] = 1
    end
  end
  set_bits(base .. 'm:' .. key, member)
  set_bits(base .. 'x:' .. key, whole)
  redis.call('DEL', s)
end

-- Reads the bitmaps once, byte by byte: a BITPOS per member would scan the
-- bitmap again from each member on (seconds at a million profiles).
local function demote(base, key)
  local m, x = base .. 'm:' .. key, base .. 'x:' .. key
  local raw = redis.call('GET', m) or ''
  local whole = redis.call('GET', x) or ''
  local members = {}
  for i = 1, #raw do
    local byte = string.byte(raw, i)
    if byte > 0 then
      local wbyte = string.byte(whole, i) or 0
      for b = 0, 7 do
        local value = 2 ^ (7 - b)
        local w = 0
        if wbyte >= value then
          wbyte = wbyte - value
          w = 1
        end
        if byte >= value then
          byte = byte - value
          members[#members + 1] = ((i - 1) * 8 + b) * 2 + w
        end
      end
    end
  end
  redis.call('DEL', m, x)
  variadic('SADD', base .. 's:' .. key, members)
end

-- Entry changes are gathered over the whole batch and applied once per entry
-- at the end: profiles share most of their entries (a skill, a department,
-- common words), so a batch touches each shared entry once, not once per
-- profile. changes[base][key][doc] = 3 * level before the batch + level after.
local changes = {}

local function change(base, key, d, old, new)
  local entries = changes[base]
  if not entries then
    entries = {}
    changes[base] = entries
  end
  local docs = entries[key]
  if not docs then
    docs = {}
    entries[key] = docs
  end
  local seen = docs[d]
  if seen then docs[d] = seen - seen % 3 + new else docs[d] = 3 * old + new end
end

-- A set member per document number and level (2 x doc + whole), as text:
-- Lua would format each number again for every entry that names it.
local member_texts = {}
local function member(d, level)
  local texts = member_texts[d]
  if not texts then
    texts = {tostring(d * 2), tostring(d * 2 + 1), tostring(d)}
    member_texts[d] = texts
  end
  return texts[level]
end

-- Applies one entry's changes: its count first (HINCRBY's answer tells
-- whether the entry existed before the batch), then its set or bitmaps.
local function apply_entry(base, key, docs, words)
  local delta, changed = 0, false
  for _, levels in pairs(docs) do
    local old, new = (levels - levels % 3) / 3, levels % 3
    if old ~= new then
      changed = true
      if old == 0 then delta = delta + 1 elseif new == 0 then delta = delta - 1 end
    end
  end
  if not changed then return end
  local n, before = nil, nil
  if delta ~= 0 then
    n = redis.call('HINCRBY', base .. 'n', key, delta)
    before = n - delta
  end
  local m = base .. 'm:' .. key
  -- No profile had it before: no set or bitmap exists yet.
  local dense = before ~= 0 and redis.call('EXISTS', m) == 1
  if dense then
    local bits, whole_bits = {}, {}
    for d, levels in pairs(docs) do
      local old, new = (levels - levels % 3) / 3, levels % 3
      if old ~= new then
        bits[#bits + 1] = member(d, 3)
        bits[#bits + 1] = (new > 0) and 1 or 0
        if new == 2 or old == 2 then
          whole_bits[#whole_bits + 1] = member(d, 3)
          whole_bits[#whole_bits + 1] = (new == 2) and 1 or 0
        end
      end
    end
    set_bits(m, bits)
    set_bits(base .. 'x:' .. key, whole_bits)
  else
    local adds, removes = {}, {}
    for d, levels in pairs(docs) do
      local old, new = (levels - levels % 3) / 3, levels % 3
      if old ~= new then
        if old > 0 then removes[#removes + 1] = member(d, old) end
        if new > 0 then adds[#adds + 1] = member(d, new) end
      end
    end
    local s = base .. 's:' .. key
    variadic('SREM', s, removes)
    variadic('SADD', s, adds)
  end
  if delta == 0 then return end
  if n == 0 then
    redis.call('HDEL', base .. 'n', key)
    redis.call('DEL', m, base .. 'x:' .. key, base .. 's:' .. key)
    words[key] = false
    return
  end
  if before == 0 then words[key] = true end
  if not dense and n > dense_above then
    promote(base, key)
  elseif dense and n < sparse_below and mode ~= 'build' then
    -- Not while building: numbers are handed out as the build goes, so the
    -- threshold rises and entries would go back and forth.
    demote(base, key)
  end
end

-- The word list for prefix* holds every word some field has. words[key]:
-- true when the entry appeared in this batch, false when it disappeared.
local function update_words(base, words)
  local added, gone = {}, {}
  for key, appeared in pairs(words) do
    local colon = string.find(key, ':', 1, true)
    if string.sub(key, colon + 1, colon + 2) == 'w:' then
      local word = string.sub(key, colon + 3)
      if appeared then added[word] = true else gone[word] = true end
    end
  end
  local zadd, zrem = {}, {}
  for word in pairs(added) do
    zadd[#zadd + 1] = 0
    zadd[#zadd + 1] = word
  end
  for word in pairs(gone) do
    if not added[word] then
      local kept = false
      for i = 1, nf do
        if redis.call('HEXISTS', base .. 'n', fields[i] .. ':w:' .. word) == 1 then
          kept = true
          break
        end
      end
      if not kept then zrem[#zrem + 1] = word end
    end
  end
  variadic('ZADD', base .. 'lex', zadd)
  variadic('ZREM', base .. 'lex', zrem)
end

local function apply_changes()
  for base, entries in pairs(changes) do
    local words = {}
    for key, docs in pairs(entries) do apply_entry(base, key, docs, words) end
    update_words(base, words)
  end
end

-- Records which entries of one profile change, and how.
local function retarget(base, d, old, new)
  for key, level in pairs(old) do
    if new[key] == nil then change(base, key, d, level, 0) end
  end
  for key, level in pairs(new) do
    local before = old[key] or 0
    if before ~= level then change(base, key, d, before, level) end
  end
end

-- Numbers of deleted profiles waiting for reuse, per generation: counted once,
-- so filing a tenant that deleted nobody asks for none.
local free_left = {}

local function free_numbers(base)
  if not free_left[base] then free_left[base] = redis.call('SCARD', base .. 'free') end
  return free_left[base]
end

local function upsert(base, fallbacks, id, digest, json, texts)
  local d = hget(base .. 'ids', id)
  local old = {}
  if d then
    if hget(base .. 'ver', d) == digest then
      hset(base .. 'docs', d, json)
      return 'unchanged'
    end
    old = derive(stored_texts(base, d))
  else
    -- A profile keeps its number across generations (page tokens name it);
    -- numbers of deleted profiles are reused so bitmaps stay short.
    for _, other in ipairs(fallbacks) do
      d = hget(other .. 'ids', id)
      if d then break end
    end
    if d then
      redis.call('SREM', base .. 'free', d)
    elseif #fallbacks == 0 and free_numbers(base) > 0 then
      d = redis.call('SPOP', base .. 'free')
      free_left[base] = free_left[base] - 1
    end
    if not d then d = tostring(redis.call('INCR', KEYS[5]) - 1) end
    hset(base .. 'ids', id, d)
  end
  retarget(base, tonumber(d), old, derive(texts))
  for i = 1, nf do
    hset(base .. 't:' .. fields[i], d, texts[i] ~= '' and texts[i])
  end
  hset(base .. 'ver', d, digest)
  hset(base .. 'docs', d, json)
  return 'written'
end

local function delete(base, id)
  local d = hget(base .. 'ids', id)
  if not d then return 'missing' end
  retarget(base, tonumber(d), derive(stored_texts(base, d)), {})
  for i = 1, nf do hset(base .. 't:' .. fields[i], d, false) end
  hset(base .. 'ver', d, false)
  hset(base .. 'docs', d, false)
  hset(base .. 'ids', id, false)
  free_left[base] = free_numbers(base) + 1
  redis.call('SADD', base .. 'free', d)
  return 'deleted'
end

local current = redis.call('GET', KEYS[1])
local targets = {}
if mode == 'build' then
  if redis.call('GET', KEYS[2]) ~= build_gen then return {'lost'} end
  redis.call('PEXPIRE', KEYS[2], lease)
  local base = prefix .. build_gen .. ':'
  local fallbacks = {}
  if current then fallbacks[1] = prefix .. current .. ':' end
  -- Profiles written live during the rebuild are newer than the source.
  targets[1] = {base = base, fallbacks = fallbacks, skip = base .. 'touched'}
else
  if not current then
    current = 'g' .. redis.call('INCR', KEYS[4])
    redis.call('SET', KEYS[1], current)
  end
  local base = prefix .. current .. ':'
  targets[1] = {base = base, fallbacks = {}}
  local building = redis.call('GET', KEYS[2])
  if building and building ~= current then
    local other = prefix .. building .. ':'
    targets[2] = {base = other, fallbacks = {base}, touched = other .. 'touched'}
  end
end

local counts = {written = 0, unchanged = 0, deleted = 0, missing = 0}
local p = 6 + nf
while p <= #ARGV do
  local op, id = ARGV[p], ARGV[p + 1]
  local digest, json, texts
  if op == 'U' then
    digest, json = ARGV[p + 2], ARGV[p + 3]
    texts = {}
    for i = 1, nf do texts[i] = ARGV[p + 3 + i] end
    p = p + 4 + nf
  else
    p = p + 2
  end
  for n, t in ipairs(targets) do
    if not (t.skip and redis.call('SISMEMBER', t.skip, id) == 1) then
      local outcome
      if op == 'U' then
        outcome = upsert(t.base, t.fallbacks, id, digest, json, texts)
      else
        outcome = delete(t.base, id)
      end
      if t.touched then redis.call('SADD', t.touched, id) end
      if n == 1 then counts[outcome] = counts[outcome] + 1 end
    end
  end
end
write_hashes()
apply_changes()
if mode == 'live' and counts.written + counts.deleted > 0 then
  redis.call('INCR', KEYS[3])
end
return {counts.written, counts.unchanged, counts.deleted, counts.missing}
