#!/usr/bin/env bash
# The C SDK's CI step: the committed header (sdk/c/include/consentry_device.h) is what cbindgen makes of
# crates/ffi now, and the example compiles as strictly as the README says. (The example's decisions are
# compared with a running server's, under Valgrind too, by `cargo test -p consentry-ffi`, part of the
# workspace tests.) cbindgen is pinned, so that every run generates the same header, and kept in
# ~/.cache/consentry/tools: installed once, then reused.
set -euo pipefail
cd "$(dirname "$0")/.."

CBINDGEN_VERSION=0.29.4
tools="$HOME/.cache/consentry/tools"
cbindgen="$tools/bin/cbindgen"
if [ ! -x "$cbindgen" ] || [ "$("$cbindgen" --version)" != "cbindgen $CBINDGEN_VERSION" ]; then
    CARGO_TARGET_DIR="$tools/cbindgen-build" cargo install --quiet --locked --force \
        --version "$CBINDGEN_VERSION" --root "$tools" cbindgen
    rm -rf "$tools/cbindgen-build"
fi

generated="${CARGO_TARGET_DIR:-target}/consentry_device.h"
"$cbindgen" --quiet --config crates/ffi/cbindgen.toml --crate consentry-ffi --output "$generated" crates/ffi
if ! diff -u sdk/c/include/consentry_device.h "$generated"; then
    echo "sdk/c/include/consentry_device.h is stale: run '$cbindgen --config crates/ffi/cbindgen.toml --crate consentry-ffi --output sdk/c/include/consentry_device.h crates/ffi' and commit it" >&2
    exit 1
fi

# The example, compiled as the README shows, against the static library `cargo test` built.
lib="${CARGO_TARGET_DIR:-target}/debug/libconsentry_device.a"
[ -f "$lib" ] || cargo build --quiet -p consentry-ffi
cc -std=c11 -Wall -Wextra -Werror -I sdk/c/include sdk/c/examples/speaker.c "$lib" \
    -Wl,--gc-sections -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o "${CARGO_TARGET_DIR:-target}/speaker"
echo "consentry_device.h is current; speaker.c compiles with -std=c11 -Wall -Wextra -Werror"
