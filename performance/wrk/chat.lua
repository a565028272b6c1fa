-- wrk script of performance/run.sh: POSTs the benchmark's request body (BODY_FILE) to WRK_PATH
-- (default /v1/chat/completions) with an optional bearer key (WRK_KEY) and any extra headers in
-- WRK_HEADERS ("name: value" pairs separated by "\n"), on keep-alive connections. At the end it
-- prints one line "WRKJSON {...}" with the counts and the latency percentiles in microseconds,
-- which run.sh reads (wrk's own text report has no p99.9).
local body_file = os.getenv("BODY_FILE")
local key = os.getenv("WRK_KEY")
local extra = os.getenv("WRK_HEADERS")

local f = assert(io.open(body_file, "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("WRK_PATH") or "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
if extra and extra ~= "" then
  for name, value in extra:gmatch("([^:\n]+):%s*([^\n]*)") do
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"non2xx":%d,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,' ..
    '"p999_us":%.1f,"max_us":%.1f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout,
    e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
