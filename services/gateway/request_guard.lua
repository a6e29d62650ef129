-- The gateway's request guard (Envoy Lua HTTP filter, envoy_on_request).
-- Refuses with 400 and a plain-text message naming the problem what gRPC would
-- answer with INTERNAL: see services/gateway/request_guard.py. Loaded by the
-- embedded gateway and written into the Helm chart's Envoy configuration from
-- this one file.

-- Header names gRPC accepts as metadata keys (Envoy lower-cases HTTP/1 names).
local METADATA_KEY = "^[0-9a-z_.%-]+$"
-- A free-form body (google.protobuf.Struct) becomes two or three protobuf levels
-- per JSON level, and the services' decoder gives up at about a hundred.
local MAX_DEPTH = 20

local function refuse(handle, message)
  handle:respond({[":status"] = "400", ["content-type"] = "text/plain"}, message)
end

local function percent_decoded(text)
  return (text:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

-- Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
local function valid_utf8(text)
  local i, n = 1, #text
  while i <= n do
    local lead = text:byte(i)
    if lead < 0x80 then
      i = i + 1
    else
      local length, smallest
      if lead >= 0xC2 and lead <= 0xDF then length, smallest = 2, 0x80
      elseif lead >= 0xE0 and lead <= 0xEF then length, smallest = 3, 0x800
      elseif lead >= 0xF0 and lead <= 0xF4 then length, smallest = 4, 0x10000
      else return false end
      if i + length - 1 > n then return false end
      local point = lead % (2 ^ (7 - length))
      for j = i + 1, i + length - 1 do
        local byte = text:byte(j)
        if byte < 0x80 or byte > 0xBF then return false end
        point = point * 64 + (byte - 0x80)
      end
      if point < smallest or point > 0x10FFFF or (point >= 0xD800 and point <= 0xDFFF) then
        return false
      end
      i = i + length
    end
  end
  return true
end

local function header_problem(name)
  if name:sub(1, 1) == ":" then
    return nil
  end
  if not name:match(METADATA_KEY) then
    return "header '" .. name .. "': a header name may contain only a-z, 0-9, '-', '_' and '.'"
  end
  if name:sub(1, 5) == "grpc-" then
    return "header '" .. name .. "': grpc- headers are reserved for gRPC and cannot be sent here"
  end
  if name:sub(-4) == "-bin" then
    return "header '" .. name .. "': -bin headers are reserved for binary gRPC metadata"
  end
  return nil
end

-- Whether a JSON text nests deeper than `limit`, brackets inside strings aside.
local function too_deep(text, limit)
  local depth, i = 0, 1
  while true do
    i = text:find('[%[%]{}"]', i)
    if not i then return false end
    local c = text:byte(i)
    if c == 34 then
      -- Skip the string: to the next quote not escaped by an odd run of backslashes.
      local j = i + 1
      while true do
        local quote = text:find('"', j, true)
        if not quote then return false end
        local backslashes = 0
        while text:byte(quote - 1 - backslashes) == 92 do backslashes = backslashes + 1 end
        if backslashes % 2 == 0 then i = quote break end
        j = quote + 1
      end
    elseif c == 91 or c == 123 then
      depth = depth + 1
      if depth > limit then return true end
    else
      depth = depth - 1
    end
    i = i + 1
  end
end

function envoy_on_request(handle)
  local headers = handle:headers()
  -- Native gRPC callers send grpc- headers of their own, and their client
  -- library has already checked the metadata: only REST calls are guarded.
  local content_type = headers:get("content-type") or ""
  if content_type:sub(1, 16) == "application/grpc" then
    return
  end
  for name, _ in pairs(headers) do
    local problem = header_problem(name)
    if problem then
      refuse(handle, problem)
      return
    end
  end
  local path = headers:get(":path") or ""
  local route, query = path:match("^([^?]*)%??(.*)$")
  if not valid_utf8(percent_decoded(route)) then
    refuse(handle, "the request path is not valid UTF-8 once percent-decoded")
  elseif not valid_utf8(percent_decoded(query)) then
    refuse(handle, "the query string is not valid UTF-8 once percent-decoded")
  else
    local body = handle:body()
    if body and body:length() > 0 and too_deep(body:getBytes(0, body:length()), MAX_DEPTH) then
      refuse(handle, "the JSON body nests deeper than " .. MAX_DEPTH .. " levels")
    end
  end
end
