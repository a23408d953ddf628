-- wrk script: POST /v1/increment as bench/increment.lua, each request named
-- with an Idempotency-Key of its own (thread, run and sequence number), so
-- the processor remembers every key: the cost of idempotent ingest.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("EVENTIDE_API_KEY") or "dev-producer")
local keys = {}
for i = 1, 1000 do
  keys[i] = string.format("00000000-0000-4000-8000-%012d", i)
end
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
local run = tostring(os.time())
request = function()
  n = n + 1
  local body = string.format('{"key":"%s","value":%d}', keys[(n % 1000) + 1], (n % 5) + 1)
  -- wrk.format takes these instead of wrk.headers, not beside them.
  local headers = {
    ["Content-Type"] = wrk.headers["Content-Type"],
    ["Authorization"] = wrk.headers["Authorization"],
    ["Idempotency-Key"] = string.format("bench-%s-%d-%d", run, tid or 0, n),
  }
  return wrk.format(nil, "/v1/increment", headers, body)
end
