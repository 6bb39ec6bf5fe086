-- wrk script for `benches/http.rs`, write phase: POST /v1/subjects/{subject}/consents cycling over
-- BENCH_SUBJECTS subjects named writer-0000, writer-0001, ...; each pass over them alternates between
-- granting and withdrawing `analytics` under the notice `analytics`. The key comes from BENCH_KEY.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")

local subjects = tonumber(os.getenv("BENCH_SUBJECTS"))
local grant = '{"notice":"analytics","changes":[{"purpose":"analytics","action":"grant"}]}'
local withdraw = '{"notice":"analytics","changes":[{"purpose":"analytics","action":"withdraw"}]}'
local n = 0

function request()
  local subject = n % subjects
  local body = (math.floor(n / subjects) % 2 == 0) and grant or withdraw
  n = n + 1
  return wrk.format(nil, string.format("/v1/subjects/writer-%04d/consents", subject), nil, body)
end

-- One machine-readable line for the bench to parse; latencies in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d errors=%d duration_us=%d p50_us=%.1f p99_us=%.1f\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
