-- wrk script: POST /v1/batch with 100 increments per request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("EVENTIDE_API_KEY") or "dev-producer")
local items = {}
for i = 1, 100 do
  items[i] = string.format('{"type":"increment","key":"00000000-0000-4000-8000-%012d","value":1}', i)
end
local body = "[" .. table.concat(items, ",") .. "]"
request = function()
  return wrk.format(nil, "/v1/batch", nil, body)
end
