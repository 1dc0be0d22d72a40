-- wrk script: authorized POSTs of one wish-list item, the token from $TOKEN.
-- Prints a machine-readable RESULT line with requests/s, p50 and p99 latency, and non-2xx count.
local token = os.getenv("TOKEN") or error("set TOKEN to a token from `wishctl token`")

wrk.method = "POST"
wrk.body = '{"name": "Bench Item", "description": "load test", "url": "https://www.amazon.com"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT kind=POST requests=%d seconds=%.2f rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
