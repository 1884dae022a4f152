-- wrk script: POST /v1/keys/verify for each key of KEYS_FILE in turn,
-- with the root key of ROOT_KEY (empty for the reference server).
local keys = {}
for line in io.lines(os.getenv("KEYS_FILE")) do keys[#keys + 1] = line end
local root = os.getenv("ROOT_KEY") or ""
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if root ~= "" then wrk.headers["Authorization"] = "Bearer " .. root end

request = function()
  i = i % #keys + 1
  return wrk.format(nil, nil, nil, '{"key":"' .. keys[i] .. '"}')
end


done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d rps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
