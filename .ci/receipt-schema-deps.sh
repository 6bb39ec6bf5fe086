#!/usr/bin/env bash
# Makes Python's `jsonschema` importable for the receipt tests, which check every receipt they issue
# against the Kantara Consent Receipt v1.1 JSON Schema with it (crates/server/tests/support/
# validate_receipt.py). Installs it from PyPI when missing, else from Debian; bounded in time. Run it before
# `cargo test` (with CONSENTRY_REQUIRE_SERVICES=1 a missing `jsonschema` fails those tests).
set -euo pipefail

have() { python3 -c 'import jsonschema' 2>/dev/null; }
have && exit 0
timeout 300 python3 -m pip install --quiet jsonschema 2>/dev/null \
    || timeout 300 python3 -m pip install --quiet --break-system-packages jsonschema 2>/dev/null \
    || { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq python3-jsonschema >/dev/null; }
have || { echo "could not install Python's jsonschema" >&2; exit 1; }
