-- wrk script: POST /v1/increment with a key drawn from 1,000 and the dev key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("EVENTIDE_API_KEY") or "dev-producer")
local keys = {}
for i = 1, 1000 do
  keys[i] = string.format("00000000-0000-4000-8000-%012d", i)
end
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"key":"%s","value":%d}', keys[(n % 1000) + 1], (n % 5) + 1)
  return wrk.format(nil, "/v1/increment", nil, body)
end
