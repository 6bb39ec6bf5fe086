-- wrk script for `benches/http.rs`, check phase: the same JSON POST on every request, with a Bearer key.
-- The bench passes the body and key in BENCH_BODY and BENCH_KEY.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")

-- One machine-readable line for the bench to parse; latencies in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d errors=%d duration_us=%d p50_us=%.1f p99_us=%.1f\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
