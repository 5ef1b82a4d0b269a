#!/usr/bin/env bash
# The Rust client's API on wasm32 (client-rs/tests/browser.rs) in headless Chromium, through
# wasm-bindgen-test-runner and chromedriver, against a gateway started here on 127.0.0.1:0.
# Needs /usr/bin/chromium and chromedriver (Debian: chromium, chromium-driver; or set
# CHROMEDRIVER); the wasm target and wasm-bindgen-cli come from scripts/build-wasm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

chromedriver=${CHROMEDRIVER:-$(command -v chromedriver || true)}
if [ -z "$chromedriver" ]; then
  echo "chromedriver not found: install it (apt-get install chromium-driver) or set CHROMEDRIVER" >&2
  exit 1
fi
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  echo "wasm-bindgen-test-runner $version missing: run scripts/build-wasm.sh first" >&2
  exit 1
fi

# With the test hook that switches heartbeat replies off (cargo feature test-hooks).
cargo build -q -p moleculer-ws-server --features moleculer-ws-server/test-hooks
bin="${CARGO_TARGET_DIR:-target}/debug/moleculer-ws-server"
# Starts the gateway with "$@" and sets $base to its http://host:port/ (log in $1).
start() {
  local log=$1; shift
  "$bin" --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  pids+=($!)
  base=""
  for _ in $(seq 1 300); do
    base=$(grep -o 'on http://[^/]*/' "$log" | head -1 | sed 's/^on //') || true
    [ -n "$base" ] && return
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log" >&2; echo "the gateway exited" >&2; exit 1; }
    sleep 0.1
  done
  cat "$log" >&2; echo "the gateway did not report its address" >&2; exit 1
}
pids=()
logs=$(mktemp -d)
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$logs"' EXIT
start "$logs/open" --trigger --demo --test-hooks --cors-origin '*'
open_base=$base
# A second gateway that wants a token (?token= from a browser).
start "$logs/token" --token s3cret
token_base=$base

# Root in a container: Chromium needs --no-sandbox (read by the runner from webdriver.json).
cd client-rs
export CHROMEDRIVER="$chromedriver"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export MOLECULER_WS_TEST_GATEWAY="$open_base"
export MOLECULER_WS_TEST_TOKEN_GATEWAY="$token_base"
export WASM_BINDGEN_TEST_TIMEOUT=60
cargo test --target wasm32-unknown-unknown -p moleculer-ws-client --test browser
