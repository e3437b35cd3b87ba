-- wrk script for replguard-full: POST a fixed body (BODY) with one shared bearer JWT
-- (AUTHORIZATION) and a pre-signed Standard Webhooks triple per request, read from REQUESTS
-- ("<webhook-id> <webhook-timestamp> <webhook-signature>" per line; the harness writes a fresh
-- file for every wrk process). Each triple is used once. Past the end of the file the last one
-- is sent again: a replay the guard refuses (401), which makes the run invalid, never quietly
-- cheaper. Prints the same WRKJSON summary line as post.lua.
local f = assert(io.open(os.getenv("BODY"), "rb")); local body = f:read("*a"); f:close()
local ids, stamps, sigs, n = {}, {}, {}, 0
for line in io.lines(os.getenv("REQUESTS")) do
  local id, ts, sig = line:match("^(%S+) (%S+) (%S+)$")
  n = n + 1; ids[n] = id; stamps[n] = ts; sigs[n] = sig
end
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = os.getenv("AUTHORIZATION") }
local i = 0
function request()
  if i < n then i = i + 1 end
  headers["webhook-id"] = ids[i]
  headers["webhook-timestamp"] = stamps[i]
  headers["webhook-signature"] = sigs[i]
  return wrk.format("POST", nil, headers, body)
end
function done(s, lat, req)
  local e = s.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"body_bytes":%d}\n',
    s.requests, s.duration, s.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    lat:percentile(50), lat:percentile(90), lat:percentile(99), lat.max, #body))
end
local d = tonumber(os.getenv("DELAY_MS") or "")
if d then function delay() return d end end
