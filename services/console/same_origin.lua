-- The console's same-origin check (Envoy Lua HTTP filter, envoy_on_request), on
-- for the /console/dev-token route only: route matching cannot compare two
-- headers; this does. The page's Origin must be the very origin the request is
-- addressed to, or the request is refused with 403.
-- REFUSAL, the message of that 403, is defined ahead of this source by
-- services/console/routes.py, which also answers it for requests without an Origin.

function envoy_on_request(handle)
  local headers = handle:headers()
  local host = headers:get(":authority") or ""
  local origin = headers:get("origin") or ""
  if host == "" or (origin ~= "http://" .. host and origin ~= "https://" .. host) then
    handle:respond({[":status"] = "403", ["content-type"] = "text/plain"}, REFUSAL)
  end
end
