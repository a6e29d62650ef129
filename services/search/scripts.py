"""The Lua scripts that read and write the index inside Redis.

Each runs atomically, so a search never sees a half-applied profile and two
writers (the differ committing a run, the extender after an edit) cannot
interleave. Which entries a profile is filed under is derived only in
APPLY_LUA, so adding and removing a profile's entries can never disagree.

Storage of one entry (a field and a word, an adjacent word pair, or a whole
value of three or more words), by how many profiles have it:

    few   s:<field>:<entry>   set of 2*doc + whole (integers: compact intsets)
    many  m:<field>:<entry>   bitmap of docs having it
          x:<field>:<entry>   bitmap of docs having it as a whole value

A profile's number is its bit position. Searches combine bitmaps (BITOP)
and add scores as bit-sliced integers, so their cost depends on the number
of profiles, not on how many match; sets are turned into bitmaps on the fly.
"""

from __future__ import annotations

from typing import Final

__all__ = ["APPLY_LUA", "RELEASE_LUA", "SEARCH_LUA", "SWAP_LUA"]

# KEYS: 1 current, 2 building, 3 epoch, 4 genseq, 5 docseq
# ARGV: 1 generation key prefix   2 mode: 'live' | 'build'
#       3 generation being built ('build')   4 build lease (ms)
#       5 field count F, then F field names (the order of the texts)
#       then per profile: 'U', id, digest, json, F analysed texts | 'D', id
# Returns {written, unchanged, deleted, missing}, or {'lost'} when a rebuild
# no longer holds its lease.
APPLY_LUA: Final = r"""
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

local function stored_texts(base, d)
  local texts = {}
  for i = 1, nf do texts[i] = redis.call('HGET', base .. 't:' .. fields[i], d) or '' end
  return texts
end

local function promote(base, key)
  local s = base .. 's:' .. key
  for _, v in ipairs(redis.call('SMEMBERS', s)) do
    local n = tonumber(v)
    local d = math.floor(n / 2)
    redis.call('SETBIT', base .. 'm:' .. key, d, 1)
    if n % 2 == 1 then redis.call('SETBIT', base .. 'x:' .. key, d, 1) end
  end
  redis.call('DEL', s)
end

local function demote(base, key)
  local m, x = base .. 'm:' .. key, base .. 'x:' .. key
  local d = redis.call('BITPOS', m, 1, 0, -1, 'BIT')
  while d >= 0 do
    redis.call('SADD', base .. 's:' .. key, d * 2 + redis.call('GETBIT', x, d))
    d = redis.call('BITPOS', m, 1, d + 1, -1, 'BIT')
  end
  redis.call('DEL', m, x)
end

-- The word list for prefix* holds every word some field has.
local function lex_check(base, key)
  local colon = string.find(key, ':', 1, true)
  if string.sub(key, colon + 1, colon + 2) ~= 'w:' then return end
  local word = string.sub(key, colon + 3)
  for i = 1, nf do
    if redis.call('HEXISTS', base .. 'n', fields[i] .. ':w:' .. word) == 1 then
      redis.call('ZADD', base .. 'lex', 0, word)
      return
    end
  end
  redis.call('ZREM', base .. 'lex', word)
end

local function set_level(base, key, d, old, new)
  local m = base .. 'm:' .. key
  local dense = redis.call('EXISTS', m) == 1
  if dense then
    redis.call('SETBIT', m, d, (new > 0) and 1 or 0)
    if new == 2 or old == 2 then
      redis.call('SETBIT', base .. 'x:' .. key, d, (new == 2) and 1 or 0)
    end
  else
    local s = base .. 's:' .. key
    if old > 0 then redis.call('SREM', s, d * 2 + ((old == 2) and 1 or 0)) end
    if new > 0 then redis.call('SADD', s, d * 2 + ((new == 2) and 1 or 0)) end
  end
  local delta = ((new > 0) and 1 or 0) - ((old > 0) and 1 or 0)
  if delta == 0 then return end
  local n = redis.call('HINCRBY', base .. 'n', key, delta)
  if n == 0 then
    redis.call('HDEL', base .. 'n', key)
    redis.call('DEL', m, base .. 'x:' .. key, base .. 's:' .. key)
    lex_check(base, key)
  elseif n == 1 and delta > 0 then
    lex_check(base, key)
  elseif not dense and n > dense_above then
    promote(base, key)
  elseif dense and n < sparse_below then
    demote(base, key)
  end
end

-- Moves one profile from its old entries to its new ones, touching only
-- entries whose level changed.
local function retarget(base, d, old, new)
  for key, level in pairs(old) do
    if new[key] == nil then set_level(base, key, d, level, 0) end
  end
  for key, level in pairs(new) do
    local before = old[key] or 0
    if before ~= level then set_level(base, key, d, before, level) end
  end
end

local function upsert(base, fallbacks, id, digest, json, texts)
  local d = redis.call('HGET', base .. 'ids', id)
  local old = {}
  if d then
    if redis.call('HGET', base .. 'ver', d) == digest then
      redis.call('HSET', base .. 'docs', d, json)
      return 'unchanged'
    end
    old = derive(stored_texts(base, d))
  else
    -- A profile keeps its number across generations (page tokens name it);
    -- numbers of deleted profiles are reused so bitmaps stay short.
    for _, other in ipairs(fallbacks) do
      d = redis.call('HGET', other .. 'ids', id)
      if d then break end
    end
    if not d and #fallbacks == 0 then d = redis.call('SPOP', base .. 'free') end
    if not d then d = tostring(redis.call('INCR', KEYS[5]) - 1) end
    redis.call('SREM', base .. 'free', d)
    redis.call('HSET', base .. 'ids', id, d)
  end
  retarget(base, tonumber(d), old, derive(texts))
  for i = 1, nf do
    if texts[i] == '' then
      redis.call('HDEL', base .. 't:' .. fields[i], d)
    else
      redis.call('HSET', base .. 't:' .. fields[i], d, texts[i])
    end
  end
  redis.call('HSET', base .. 'ver', d, digest)
  redis.call('HSET', base .. 'docs', d, json)
  return 'written'
end

local function delete(base, id)
  local d = redis.call('HGET', base .. 'ids', id)
  if not d then return 'missing' end
  retarget(base, tonumber(d), derive(stored_texts(base, d)), {})
  for i = 1, nf do redis.call('HDEL', base .. 't:' .. fields[i], d) end
  redis.call('HDEL', base .. 'ver', d)
  redis.call('HDEL', base .. 'docs', d)
  redis.call('HDEL', base .. 'ids', id)
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
if mode == 'live' and counts.written + counts.deleted > 0 then
  redis.call('INCR', KEYS[3])
end
return {counts.written, counts.unchanged, counts.deleted, counts.missing}
"""

# KEYS: 1 current
# ARGV: 1 generation key prefix  2 page size  3 cursor score ('' on a first
#       page)  4 cursor doc  5 prefix expansion limit
#       6, 7, 8 points per unit of field weight for a word inside a value, a
#       whole value, a longer word found by prefix*
#       9 field count F, then F (name, weight) pairs  then the plan
#       (services/search/plan.py)
# Scores are integers: points are half units (a word scores 2 x weight).
# Returns {'ok', total, following, doc, score, json, ...} best first, where
# following counts the matches from this page on; {'empty'} when nothing was
# ever indexed; or {'prefix', n} when the n-th term of the plan is a prefix
# matching too many words.
SEARCH_LUA: Final = r"""
local gen = redis.call('GET', KEYS[1])
if not gen then return {'empty'} end
local base = ARGV[1] .. gen .. ':'
local size = tonumber(ARGV[2])
local cscore, cdoc = ARGV[3], ARGV[4]
local maxexp = tonumber(ARGV[5])
local word_points, whole_points = tonumber(ARGV[6]), tonumber(ARGV[7])
local prefix_points = tonumber(ARGV[8])
local nf = tonumber(ARGV[9])
local fields, weight = {}, {}
for i = 1, nf do
  fields[i] = ARGV[8 + 2 * i]
  weight[fields[i]] = tonumber(ARGV[9 + 2 * i])
end
local p = 10 + 2 * nf
local temps = {}
local ordinal = 0
local overflow = nil

local function arg()
  local v = ARGV[p]
  p = p + 1
  return v
end

local function temp()
  local key = base .. 'tmp:' .. (#temps + 1)
  temps[#temps + 1] = key
  return key
end

local function bitop(op, keys)
  if #keys == 1 and op ~= 'NOT' then return keys[1] end
  local dest = temp()
  redis.call('BITOP', op, dest, unpack(keys))
  return dest
end

local function bits(n)
  local b = 0
  while n > 0 do
    b = b + 1
    n = math.floor(n / 2)
  end
  return b
end

-- An entry's bitmaps in one field: membership, whole-value (or nil), or nil.
local function entry(f, id)
  local key = f .. ':' .. id
  local m = base .. 'm:' .. key
  if redis.call('EXISTS', m) == 1 then
    local x = base .. 'x:' .. key
    if redis.call('EXISTS', x) == 0 then x = nil end
    return m, x
  end
  local members = redis.call('SMEMBERS', base .. 's:' .. key)
  if #members == 0 then return nil end
  local tm, tx = temp(), nil
  for _, v in ipairs(members) do
    local n = tonumber(v)
    local d = math.floor(n / 2)
    redis.call('SETBIT', tm, d, 1)
    if n % 2 == 1 then
      tx = tx or temp()
      redis.call('SETBIT', tx, d, 1)
    end
  end
  return tm, tx
end

-- Bit-sliced integers: acc[j] is the bitmap of bit j of every doc's score.
-- acc = acc + c * B for a bitmap B (ripple carry).
local function add_const(acc, c, b)
  acc.max = acc.max + c
  local carry, rest = nil, c
  for j = 0, bits(acc.max) - 1 do
    local ins = {}
    if acc[j] then ins[#ins + 1] = acc[j] end
    if rest % 2 == 1 then ins[#ins + 1] = b end
    if carry then ins[#ins + 1] = carry end
    rest = math.floor(rest / 2)
    if #ins == 1 then
      acc[j], carry = ins[1], nil
    elseif #ins == 2 then
      acc[j], carry = bitop('XOR', ins), bitop('AND', ins)
    elseif #ins == 3 then
      local half = bitop('XOR', {ins[1], ins[2]})
      acc[j] = bitop('XOR', {half, ins[3]})
      carry = bitop('OR', {bitop('AND', {ins[1], ins[2]}), bitop('AND', {half, ins[3]})})
    end
    if carry == nil and rest == 0 then break end
  end
end

-- acc = acc + other
local function add_sliced(acc, other)
  acc.max = acc.max + other.max
  local carry = nil
  for j = 0, bits(acc.max) - 1 do
    local ins = {}
    if acc[j] then ins[#ins + 1] = acc[j] end
    if other[j] then ins[#ins + 1] = other[j] end
    if carry then ins[#ins + 1] = carry end
    if #ins == 1 then
      acc[j], carry = ins[1], nil
    elseif #ins == 2 then
      acc[j], carry = bitop('XOR', ins), bitop('AND', ins)
    elseif #ins == 3 then
      local half = bitop('XOR', {ins[1], ins[2]})
      acc[j] = bitop('XOR', {half, ins[3]})
      carry = bitop('OR', {bitop('AND', {ins[1], ins[2]}), bitop('AND', {half, ins[3]})})
    end
  end
end

local function masked(acc, member)
  local out = {max = acc.max}
  for j = 0, bits(acc.max) - 1 do
    if acc[j] then out[j] = bitop('AND', {acc[j], member}) end
  end
  return out
end

-- a AND NOT b, without NOT (whose padding would lose bits past b's length).
local function minus(a, b)
  return bitop('XOR', {a, bitop('AND', {a, b})})
end

local function scope(name)
  if name == '*' then return fields end
  return {name}
end

-- Score of one field match: a word or phrase inside a value, a whole value.
local function add_match(acc, members, f, m, x)
  add_const(acc, word_points * weight[f], m)
  if x then add_const(acc, (whole_points - word_points) * weight[f], x) end
  members[#members + 1] = m
end

-- Each term gives {score = sliced, member = bitmap} or nil (no match).
local function entry_term(where, id, scored)
  local acc, members = {max = 0}, {}
  for _, f in ipairs(scope(where)) do
    local m, x = entry(f, id)
    if m then
      if scored then
        add_match(acc, members, f, m, x)
      else
        members[#members + 1] = m
      end
    end
  end
  if #members == 0 then return nil end
  return {score = acc, member = bitop('OR', members)}
end

local function prefix_term(where, prefix, skip, scored)
  local words = redis.call('ZRANGEBYLEX', base .. 'lex', '[' .. prefix,
    '[' .. prefix .. '\255', 'LIMIT', 0, maxexp + 1)
  if #words > maxexp then
    overflow = overflow or ordinal
    return nil
  end
  if skip or #words == 0 then return nil end
  local acc, members = {max = 0}, {}
  for _, f in ipairs(scope(where)) do
    local exact_m, exact_x = nil, nil
    local longer, gathered = {}, nil
    for _, w in ipairs(words) do
      if w == prefix then
        exact_m, exact_x = entry(f, 'w:' .. w)
      else
        -- Sets of rare words are gathered into one bitmap.
        local key = base .. 'm:' .. f .. ':w:' .. w
        if redis.call('EXISTS', key) == 1 then
          longer[#longer + 1] = key
        else
          local rare = redis.call('SMEMBERS', base .. 's:' .. f .. ':w:' .. w)
          if #rare > 0 then
            gathered = gathered or temp()
            for _, v in ipairs(rare) do
              redis.call('SETBIT', gathered, math.floor(tonumber(v) / 2), 1)
            end
          end
        end
      end
    end
    if exact_m and scored then
      add_match(acc, members, f, exact_m, exact_x)
    elseif exact_m then
      members[#members + 1] = exact_m
    end
    if gathered then longer[#longer + 1] = gathered end
    if #longer > 0 then
      local any = bitop('OR', longer)
      local only = any
      if exact_m then only = minus(any, exact_m) end
      if scored then add_const(acc, prefix_points * weight[f], only) end
      members[#members + 1] = any
    end
  end
  if #members == 0 then return nil end
  return {score = acc, member = bitop('OR', members)}
end

-- Numbers of the docs in a bitmap: by BITPOS when few, else by reading it once.
local function members_of(key)
  local out = {}
  if redis.call('BITCOUNT', key) <= 64 then
    local d = redis.call('BITPOS', key, 1, 0, -1, 'BIT')
    while d >= 0 do
      out[#out + 1] = d
      d = redis.call('BITPOS', key, 1, d + 1, -1, 'BIT')
    end
    return out
  end
  local raw = redis.call('GET', key) or ''
  for start = 1, #raw, 4000 do
    local bytes = {string.byte(raw, start, math.min(start + 3999, #raw))}
    for i, byte in ipairs(bytes) do
      if byte > 0 then
        local at = (start + i - 2) * 8
        for b = 0, 7 do
          local value = 2 ^ (7 - b)
          if byte >= value then
            out[#out + 1] = at + b
            byte = byte - value
          end
        end
      end
    end
  end
  return out
end

-- A phrase of three or more words: profiles having all its word pairs in a
-- field are candidates; whole values equal to it are known; the rest are
-- checked against the stored analysed text.
local function phrase_term(where, phrase, pairs, skip, scored)
  if skip then return nil end
  local inside, entire = ' ' .. phrase .. ' ', '| ' .. phrase .. ' |'
  local acc, members = {max = 0}, {}
  for _, f in ipairs(scope(where)) do
    local parts = {}
    for _, id in ipairs(pairs) do
      local m = entry(f, id)
      if not m then
        parts = nil
        break
      end
      parts[#parts + 1] = m
    end
    if parts then
      local candidates = bitop('AND', parts)
      local whole = nil
      if f ~= 'aboutMe' then whole = entry(f, 'v:' .. phrase) end
      local rest = candidates
      if whole then rest = minus(candidates, whole) end
      -- Most candidates hold the phrase: mark the ones that do not.
      local rejected, found_whole = nil, nil
      local docs = members_of(rest)
      for i = 1, #docs, 500 do
        local chunk = {}
        for k = i, math.min(i + 499, #docs) do chunk[#chunk + 1] = docs[k] end
        local texts = redis.call('HMGET', base .. 't:' .. f, unpack(chunk))
        for k, d in ipairs(chunk) do
          local text = texts[k]
          if text and string.find(text, inside, 1, true) then
            if string.find(text, entire, 1, true) then
              found_whole = found_whole or temp()
              redis.call('SETBIT', found_whole, d, 1)
            end
          else
            rejected = rejected or temp()
            redis.call('SETBIT', rejected, d, 1)
          end
        end
      end
      local found = nil
      if #docs > 0 then
        found = rest
        if rejected then found = minus(rest, rejected) end
      end
      local m_parts, x_parts = {}, {}
      if whole then
        m_parts[#m_parts + 1] = whole
        x_parts[#x_parts + 1] = whole
      end
      if found then m_parts[#m_parts + 1] = found end
      if found_whole then x_parts[#x_parts + 1] = found_whole end
      if #m_parts > 0 then
        local m = bitop('OR', m_parts)
        local x = nil
        if #x_parts > 0 then x = bitop('OR', x_parts) end
        if scored then
          add_match(acc, members, f, m, x)
        else
          members[#members + 1] = m
        end
      end
    end
  end
  if #members == 0 then return nil end
  return {score = acc, member = bitop('OR', members)}
end

local function term(skip, scored)
  ordinal = ordinal + 1
  local kind, where = arg(), arg()
  if kind == 'T' then
    local id = arg()
    if skip then return nil end
    return entry_term(where, id, scored)
  elseif kind == 'P' then
    return prefix_term(where, arg(), skip, scored)
  end
  local phrase = arg()
  local pairs = {}
  for i = 1, tonumber(arg()) do pairs[i] = arg() end
  return phrase_term(where, phrase, pairs, skip, scored)
end

-- Required terms all match (scores add up); excluded terms must not.
local function group()
  local required, excluded = tonumber(arg()), tonumber(arg())
  local found, empty = {}, false
  for _ = 1, required do
    local t = term(empty, true)
    if t then found[#found + 1] = t else empty = true end
  end
  local out = {}
  for _ = 1, excluded do
    local t = term(empty, false)
    if t then out[#out + 1] = t.member end
  end
  if empty then return nil end
  local members = {}
  for i, t in ipairs(found) do members[i] = t.member end
  local member = bitop('AND', members)
  if #out > 0 then member = minus(member, bitop('OR', out)) end
  local score = found[1].score
  for i = 2, #found do add_sliced(score, found[i].score) end
  return {score = score, member = member}
end

local function cleanup()
  for i = 1, #temps, 1000 do
    redis.call('DEL', unpack(temps, i, math.min(i + 999, #temps)))
  end
end

local groups = {}
for _ = 1, tonumber(arg()) do
  local g = group()
  if g then groups[#groups + 1] = g end
end
if overflow then
  cleanup()
  return {'prefix', overflow}
end
if #groups == 0 then
  cleanup()
  return {'ok', 0, 0}
end
local score, matches
if #groups == 1 then
  score, matches = groups[1].score, groups[1].member
else
  -- A profile matching several groups scores the sum of those groups.
  score = {max = 0}
  local members = {}
  for i, g in ipairs(groups) do
    add_sliced(score, masked(g.score, g.member))
    members[i] = g.member
  end
  matches = bitop('OR', members)
end
local total = redis.call('BITCOUNT', matches)
local top = bits(score.max) - 1

-- Results rank by score, then by document number. A later page starts
-- after the last result sent: a lower score, or the same score and a
-- higher number.
local pool = matches
if cscore ~= '' then
  local s, d = tonumber(cscore), tonumber(cdoc)
  local lower, same = nil, matches
  if s > score.max then
    lower, same = matches, nil
  else
    for j = top, 0, -1 do
      if not same then break end
      local one = nil
      if score[j] then one = bitop('AND', {same, score[j]}) end
      if math.floor(s / 2 ^ j) % 2 == 1 then
        if one then
          local zero = minus(same, one)
          lower = lower and bitop('OR', {lower, zero}) or zero
          same = one
        else
          lower = lower and bitop('OR', {lower, same}) or same
          same = nil
        end
      elseif one then
        same = minus(same, one)
      end
    end
  end
  pool = lower
  if same then
    local byte = math.floor(d / 8)
    local length = redis.call('STRLEN', same)
    local after = temp()
    if length > byte + 1 then
      redis.call('SETRANGE', after, byte + 1, string.rep('\255', length - byte - 1))
    end
    for b = d + 1, byte * 8 + 7 do redis.call('SETBIT', after, b, 1) end
    local later = bitop('AND', {same, after})
    pool = pool and bitop('OR', {pool, later}) or later
  end
end

-- The best `size` of the pool: walk the score bits from the top, keeping
-- the docs sure to be in (ahead) and narrowing the ones still contending.
local picked = {}
local following = 0
if pool then
  following = redis.call('BITCOUNT', pool)
  local ahead, contending, need = {}, pool, size
  for j = top, 0, -1 do
    if score[j] then
      local one = bitop('AND', {contending, score[j]})
      local n = redis.call('BITCOUNT', one)
      if n >= need then
        contending = one
        if n == need then break end
      elseif n > 0 then
        ahead[#ahead + 1] = one
        contending = minus(contending, one)
        need = need - n
      end
    end
  end
  for _, key in ipairs(ahead) do
    local d = redis.call('BITPOS', key, 1, 0, -1, 'BIT')
    while d >= 0 do
      picked[#picked + 1] = d
      d = redis.call('BITPOS', key, 1, d + 1, -1, 'BIT')
    end
  end
  local d = redis.call('BITPOS', contending, 1, 0, -1, 'BIT')
  while d >= 0 and need > 0 do
    picked[#picked + 1] = d
    need = need - 1
    d = redis.call('BITPOS', contending, 1, d + 1, -1, 'BIT')
  end
end
local scored = {}
for i, d in ipairs(picked) do
  local s = 0
  for j = 0, top do
    if score[j] and redis.call('GETBIT', score[j], d) == 1 then s = s + 2 ^ j end
  end
  scored[i] = {d, s}
end
cleanup()
table.sort(scored, function(a, b)
  if a[2] ~= b[2] then return a[2] > b[2] end
  return a[1] < b[1]
end)
local out = {'ok', total, following}
if #scored > 0 then
  local docs = {}
  for i, item in ipairs(scored) do docs[i] = item[1] end
  local found = redis.call('HMGET', base .. 'docs', unpack(docs))
  for i, item in ipairs(scored) do
    out[#out + 1] = item[1]
    out[#out + 1] = item[2]
    out[#out + 1] = found[i]
  end
end
return out
"""

# Makes a finished rebuild the live index. KEYS: 1 building, 2 current, 3 epoch;
# ARGV: 1 generation, 2 its touched set. Returns the replaced generation
# ('' if none), or false when the rebuild no longer holds its lease.
SWAP_LUA: Final = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local old = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[3])
return old or ''
"""

# Gives up a rebuild's lease if it still holds it. KEYS: 1 building; ARGV: 1 generation.
RELEASE_LUA: Final = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
