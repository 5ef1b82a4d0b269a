#!/usr/bin/env bash
# Builds the browser client into js/pkg/ (served by the gateway next to websocket.js) and
# prints the gzip size of wasm + glue. Installs the wasm target and the exact
# wasm-bindgen-cli version of Cargo.lock when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  echo "installing wasm-bindgen-cli $version (once; takes a few minutes)"
  cargo install wasm-bindgen-cli --version "$version"
fi

cargo build -p moleculer-ws-wasm --target wasm32-unknown-unknown --profile wasm-release
rm -rf js/pkg
wasm-bindgen --target web --no-typescript --out-dir js/pkg \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/moleculer_ws_wasm.wasm"
# wasm-opt from npm's binaryen (Debian's is too old for reference types).
if [ ! -x js/node_modules/.bin/wasm-opt ] || [ ! -x js/node_modules/.bin/terser ]; then
  (cd js && npm ci --no-audit --no-fund)
fi
# -Oz until nothing shrinks any more; the producers and target-features sections are metadata
# the browser ignores. --low-memory-unused: Rust puts the 1 MiB stack first (growing down to
# 0) and the data above it, so the low 1 KiB is only reached by a stack overflow.
js/node_modules/.bin/wasm-opt -Oz --converge --low-memory-unused \
  --enable-reference-types --enable-multivalue \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --strip-debug --strip-producers --strip-target-features \
  -o js/pkg/moleculer_ws_wasm_bg.wasm js/pkg/moleculer_ws_wasm_bg.wasm
# The glue, minified (its exports, `default`, `initSync` and the `Connection` class with its
# methods, keep their names). unsafe_arrows/unsafe_methods turn functions that never use `this`
# into arrows and methods into shorthand: safe here, the glue never calls them with `new`.
js/node_modules/.bin/terser js/pkg/moleculer_ws_wasm.js --module --ecma 2020 \
  -c passes=2,unsafe_arrows=true,unsafe_methods=true -m \
  -o js/pkg/moleculer_ws_wasm.js
node scripts/shorten-wasm-imports.mjs js/pkg/moleculer_ws_wasm_bg.wasm js/pkg/moleculer_ws_wasm.js
wasm_gz=$(gzip -9 -c js/pkg/moleculer_ws_wasm_bg.wasm | wc -c)
glue_gz=$(gzip -9 -c js/pkg/moleculer_ws_wasm.js | wc -c)
loader_gz=$(gzip -9 -c js/websocket.js | wc -c)
echo "browser client (gzip -9): wasm ${wasm_gz} B + glue ${glue_gz} B + websocket.js ${loader_gz} B = $((wasm_gz + glue_gz + loader_gz)) B"
