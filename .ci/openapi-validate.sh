#!/usr/bin/env bash
# Validates the committed openapi.json against the OpenAPI 3.1 specification with openapi-spec-validator
# (installed from PyPI when missing). Exits non-zero on any error.
#
# Usage, from the repository root: bash .ci/openapi-validate.sh
set -euo pipefail

VALIDATOR_VERSION=0.9.0
root=$(cd "$(dirname "$0")/.." && pwd)

if ! python3 -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('openapi-spec-validator') == '$VALIDATOR_VERSION' else 1)" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check "openapi-spec-validator==$VALIDATOR_VERSION"
fi
python3 -m openapi_spec_validator "$root/openapi.json"
