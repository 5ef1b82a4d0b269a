#!/usr/bin/env bash
# Builds the browser client: js/websocket.js, the single file (the drop-in, served by the
# gateway at /websocket.js), and the split build js/split/ (websocket.js + websocket.wasm), and
# prints their gzip sizes. Installs the wasm target and the exact
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

# Panic locations stay in the module (with panic = "abort" too) as file paths: shortened, the
# registry's and the standard library's cost about 200 B less to download.
registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ 2>/dev/null | head -1 || true)
std_hash=$(rustc -vV | sed -n 's/^commit-hash: //p')
remap="--remap-path-prefix=/rustc/$std_hash/library=std"
[ -n "$registry" ] && remap="$remap --remap-path-prefix=${registry%/}=crates"
RUSTFLAGS="${RUSTFLAGS:-} $remap" \
  cargo build -p moleculer-ws-wasm --target wasm32-unknown-unknown --profile wasm-release
out="${CARGO_TARGET_DIR:-target}/browser-client"
rm -rf "$out" js/pkg
wasm-bindgen --target no-modules --no-typescript --out-dir "$out" \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/moleculer_ws_wasm.wasm"
# wasm-opt from npm's binaryen (Debian's is too old for reference types).
if [ ! -x js/node_modules/.bin/wasm-opt ] || [ ! -x js/node_modules/.bin/terser ] || [ ! -d js/node_modules/@gfx/zopfli ]; then
  (cd js && npm ci --no-audit --no-fund)
fi
# -Oz until nothing shrinks any more; the producers and target-features sections are metadata
# the browser ignores. --low-memory-unused: Rust puts the 1 MiB stack first (growing down to
# 0) and the data above it, so the low 1 KiB is only reached by a stack overflow.
js/node_modules/.bin/wasm-opt -Oz --converge --low-memory-unused \
  --enable-reference-types --enable-multivalue \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --strip-debug --strip-producers --strip-target-features \
  -o "$out/moleculer_ws_wasm_bg.wasm" "$out/moleculer_ws_wasm_bg.wasm"
# The glue, minified with the loader that wraps it (exports of the glue keep their names).
# unsafe_arrows/unsafe_methods turn functions that never use `this` into arrows and methods
# into shorthand: safe here, the glue never calls them with `new`. The glue's three long
# console warnings (a wasm served without application/wasm; deprecated arguments of the init
# functions, which the loader never passes) are shortened: about 100 B of the download.
node -e '
  const fs = require("fs");
  const [src, glue, out] = process.argv.slice(1);
  const short = fs.readFileSync(glue, "utf8")
    .replace(/"`WebAssembly.instantiateStreaming` failed because[^"]*"/, () => "\"wasm: no application/wasm MIME type:\"")
    .replace(/\x27using deprecated parameters for[^\x27]*\x27/g, () => "\"wasm: deprecated parameters\"");
  fs.writeFileSync(out, fs.readFileSync(src, "utf8").replace("/*@glue*/", () => short));
' js/src/websocket.js "$out/moleculer_ws_wasm.js" "$out/loader.js"
js/node_modules/.bin/terser "$out/loader.js" --ecma 2020 --comments '/^!/' \
  -c passes=2,unsafe_arrows=true,unsafe_methods=true -m -o "$out/loader.min.js"
node scripts/shorten-wasm-imports.mjs "$out/moleculer_ws_wasm_bg.wasm" "$out/loader.min.js"
node scripts/bundle-browser.mjs "$out/loader.min.js" "$out/moleculer_ws_wasm_bg.wasm"
