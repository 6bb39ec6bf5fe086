#!/usr/bin/env bash
# Schemathesis (--checks all) against a running server: every status, media type and body the server
# answers must be the one the committed openapi.json declares, and every request valid by the document
# must be accepted (or refused with a status the document names). Builds and starts `consentry serve` on a
# free loopback port with a fresh data folder and a known bootstrap admin key, runs a bounded number of
# examples per operation with the admin key as Bearer auth, stops the server and exits non-zero on any
# failure.
#
# Usage, from the repository root: bash .ci/schemathesis.sh
# Environment: SCHEMATHESIS_EXAMPLES (examples per operation, default 30), SCHEMATHESIS_SERVER_BIN (a built binary;
# default: `cargo build -p consentry` and its target folder).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! python3 -c "import schemathesis, sys; sys.exit(0 if schemathesis.__version__ == '$SCHEMATHESIS_VERSION' else 1)" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [[ -z "${SCHEMATHESIS_SERVER_BIN:-}" ]]; then
    cargo build -q -p consentry
    target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    SCHEMATHESIS_SERVER_BIN="$target/debug/consentry"
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
admin_key="csk_schemathesis_$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
base="http://127.0.0.1:$port"

# Schemathesis sends requests without credentials on purpose (the ignored_auth check); the per-address
# limit on failed authentication must not lock its own key out, so it is raised for this run only.
# Verifications take their real path against an SMTP URL nothing listens on (port 9 on loopback) and an SMS
# gateway URL the egress rules refuse (loopback): no mail or SMS leaves this run, and the limits on starts
# are raised so that examples reach more than the 429.
CONSENTRY_BOOTSTRAP_ADMIN_KEY="$admin_key" \
CONSENTRY_SMTP_URL="smtp://127.0.0.1:9" \
CONSENTRY_SMTP_FROM="Schemathesis <schemathesis@example.com>" \
CONSENTRY_SMS_WEBHOOK_URL="http://127.0.0.1:9/sms" \
CONSENTRY_SMS_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" \
CONSENTRY_VERIFICATION_PER_IDENTIFIER_PER_HOUR=1000 \
CONSENTRY_VERIFICATION_PER_IDENTIFIER_PER_DAY=10000 \
CONSENTRY_VERIFICATION_PER_ADDRESS_PER_HOUR=100000 \
CONSENTRY_AUTH_FAILURES_BURST=100000 \
CONSENTRY_AUTH_FAILURES_PER_MINUTE=60000 \
CONSENTRY_LOG_FORMAT=json \
    "$SCHEMATHESIS_SERVER_BIN" serve --data "$work/data" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
    if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "schemathesis.sh: the server did not start:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null

status=0
# From the scratch folder: Schemathesis keeps a cache (`.schemathesis/`) where it runs, not in the clone.
cd "$work"
# One worker: with two, Hypothesis parses sources on two threads at once and CPython 3.11's AST validator
# trips over its shared recursion counter ("AST constructor recursion depth mismatch", an internal error
# that failed a CI run with no finding of ours).
python3 -m schemathesis.cli --config-file "$root/.ci/schemathesis.toml" run "$root/openapi.json" \
    --url "$base" \
    --checks all \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-30}" \
    --request-timeout 10 \
    --workers 1 \
    --seed 14 \
    --no-shrink \
    --suppress-health-check all \
    --header "Authorization: Bearer $admin_key" \
    --output-truncate false \
    --report junit --report-dir "$work/report" || status=$?

if grep -q '"level":"ERROR"' "$work/server.log"; then
    echo "schemathesis.sh: the server logged errors:" >&2
    grep '"level":"ERROR"' "$work/server.log" | head -20 >&2
    status=1
fi
exit "$status"
