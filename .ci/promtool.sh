#!/usr/bin/env bash
# Checks /metrics with the standards' own tools: starts `consentry serve` on a free loopback port with a
# fresh data folder, makes traffic (a consent, checks, a destination and its delivery), scrapes /metrics
# as the Prometheus text format 0.0.4 and runs `promtool check metrics` on it (Debian's `prometheus`
# package), then scrapes it as OpenMetrics 1.0 and parses that with the Python client's strict
# OpenMetrics parser (Debian's `python3-prometheus-client`). Installs both when missing.
# Run from a clone after `cargo build` (it builds the `consentry` binary when it is missing):
#   .ci/promtool.sh            (CONSENTRY_BIN=path overrides the binary)
set -euo pipefail
cd "$(dirname "$0")/.."

install_missing() {
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v promtool >/dev/null 2>&1 || install_missing prometheus
# Debian's Python, where the Debian package puts the parser (another python3 may come first on PATH).
debian_python=/usr/bin/python3
"$debian_python" -c 'import prometheus_client.openmetrics.parser' 2>/dev/null || install_missing python3-prometheus-client
command -v curl >/dev/null 2>&1 || install_missing curl

if [ -z "${CONSENTRY_BIN:-}" ]; then
    target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    CONSENTRY_BIN="$target/debug/consentry"
    [ -x "$CONSENTRY_BIN" ] || timeout 1800 cargo build -q -p consentry
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "promtool.sh: $*" >&2; [ -f "$work/serve.log" ] && tail -n 40 "$work/serve.log" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
hook_port=$(free_port)
base="http://127.0.0.1:$port"
key="promtool-ci-bootstrap-admin-key-0123456789"

# A webhook receiver that takes every delivery.
python3 - "$hook_port" >"$work/hook.log" 2>&1 <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()
HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
pids+=($!)

# The server refuses CONSENTRY_* variables it does not know, so the binary's path is not passed on.
env -u CONSENTRY_DATABASE_URL -u CONSENTRY_BIN CONSENTRY_BOOTSTRAP_ADMIN_KEY="$key" \
    CONSENTRY_ALLOW_PRIVATE_DESTINATIONS="127.0.0.0/8" \
    "$CONSENTRY_BIN" serve --data "$work/data" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "$base/healthz" >/dev/null || fail "the server did not start"

call() { # method path body
    curl -fsS --max-time 10 -X "$1" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        --data "$3" "$base$2" >/dev/null || fail "$1 $2 failed"
}
call POST /v1/destinations "{\"name\":\"ci\",\"kind\":\"webhook\",\"url\":\"http://127.0.0.1:$hook_port/hook\",\"event_types\":[\"consent.*\"]}"
call POST /v1/subjects/promtool-1/consents '{"notice":"marketing.direct","collection_point":"web-signup","changes":[{"purpose":"marketing.direct","action":"grant","channels":["email"]}]}'
call POST /v1/check '{"subject":"promtool-1","purpose":"marketing.direct","channel":"email"}'
call POST /v1/check '{"subject":"promtool-1","purpose":"marketing.direct"}'
call POST /v1/check '{"subject":"promtool-2","purpose":"marketing.direct","channel":"email"}'

# The delivery and the consent gauges come from background jobs: wait for both (at most 15 s).
text="$work/metrics.txt"
for _ in $(seq 1 75); do
    curl -fsS --max-time 10 "$base/metrics" >"$text" || fail "scraping /metrics failed"
    if grep -q '^consentry_deliveries_total{.*result="delivered"' "$text" &&
        grep -q '^consentry_consents{purpose="marketing.direct",state="not_covered"} 1$' "$text"; then
        break
    fi
    sleep 0.2
done
grep -q '^consentry_deliveries_total{.*result="delivered"' "$text" || fail "no delivery was counted"
grep -q '^consentry_consents{purpose="marketing.direct",state="not_covered"} 1$' "$text" ||
    fail "the consent gauges did not count the grant"

echo "== Prometheus text format 0.0.4"
type=$(curl -fsS --max-time 10 -o "$text" -w '%{content_type}' "$base/metrics")
[ "$type" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "0.0.4 scrape has Content-Type $type"
timeout 60 promtool check metrics <"$text" || fail "promtool check metrics failed"
echo "promtool check metrics: ok ($(grep -vc '^#' "$text") samples)"

echo "== OpenMetrics 1.0"
om="$work/metrics.om"
accept='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
type=$(curl -fsS --max-time 10 -H "Accept: $accept" -o "$om" -w '%{content_type}' "$base/metrics")
[ "$type" = "application/openmetrics-text; version=1.0.0; charset=utf-8" ] || fail "OpenMetrics scrape has Content-Type $type"
[ "$(tail -n 1 "$om")" = "# EOF" ] || fail "the OpenMetrics exposition does not end in # EOF"
timeout 60 "$debian_python" - "$om" <<'PY' || fail "the OpenMetrics exposition does not parse"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(open(sys.argv[1]).read()))
print(f"OpenMetrics parser: ok ({len(families)} families)")
PY
