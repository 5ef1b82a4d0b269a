#!/usr/bin/env bash
# Runs every check and test of the workspace: what CI runs, and what the README's test
# command runs. scripts/preflight.sh first checks every tool it needs and prints the command
# that installs each missing one; `.ci/run` installs everything on a fresh machine. The wasm
# target and wasm-bindgen-cli are installed by scripts/build-wasm.sh when missing. scripts/deny.sh
# fetches the RustSec advisory database, or reads the copy named by ADVISORY_DB_SNAPSHOT.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "preflight: the tools the tests need"
./scripts/preflight.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo deny check (advisories, licenses, bans, sources; deny.toml)"
./scripts/deny.sh

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "the gateway as a library without its default features (no cli, nats, redis), and with one transporter"
cargo clippy -p moleculer-ws-server --no-default-features --all-targets -- -D warnings
cargo clippy -p moleculer-ws-server --no-default-features --features nats -- -D warnings
cargo clippy -p moleculer-ws-server --no-default-features --features redis -- -D warnings
cargo test -q -p moleculer-ws-server --no-default-features --lib
lean=$(cargo tree -p moleculer-ws-server --no-default-features -e normal --prefix none)
for crate in async-nats redis clap tracing-subscriber; do
  if grep -q "^$crate v" <<<"$lean"; then
    echo "moleculer-ws-server without default features still builds $crate" >&2
    exit 1
  fi
done

step "the Rust client's features: the WebSocket without REST, REST without the WebSocket, neither"
cargo clippy -p moleculer-ws-client --no-default-features --features tokio-runtime -- -D warnings
cargo clippy -p moleculer-ws-client --no-default-features --features tokio-runtime,rustls -- -D warnings
cargo clippy -p moleculer-ws-client --no-default-features --features deflate -- -D warnings
cargo clippy -p moleculer-ws-client --no-default-features --features rest -- -D warnings
cargo clippy -p moleculer-ws-client --no-default-features -- -D warnings
for target in "" "--target wasm32-unknown-unknown"; do
  feature=$([ -z "$target" ] && echo tokio-runtime || echo browser)
  # shellcheck disable=SC2086
  if cargo tree -p moleculer-ws-client $target --no-default-features --features "$feature" \
      -e normal --prefix none | grep -q "^reqwest v"; then
    echo "moleculer-ws-client without the rest feature ($feature) still builds reqwest" >&2
    exit 1
  fi
done

step "cargo clippy for wasm32 (the Rust client with and without the browser driver, the JS face)"
cargo clippy -p moleculer-ws-client --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p moleculer-ws-client --target wasm32-unknown-unknown --no-default-features -- -D warnings
cargo clippy -p moleculer-ws-client --target wasm32-unknown-unknown --no-default-features --features browser -- -D warnings
cargo clippy -p moleculer-ws-client --target wasm32-unknown-unknown --test browser -- -D warnings
cargo clippy -p moleculer-ws-browser -p moleculer-ws-wasm --target wasm32-unknown-unknown -- -D warnings

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo package: the crates for crates.io (session, browser, client, server); the others are publish = false"
cargo package --workspace --exclude moleculer-ws-bench --exclude moleculer-ws-conformance \
  --exclude moleculer-ws-wasm --no-verify --allow-dirty --quiet

step "browser client build (js/websocket.js, js/split/)"
./scripts/build-wasm.sh

step "cargo test --workspace"
# The rolling-restart test (tests/tests/rolling_restart.rs) drives a browser page with js/'s
# packages (playwright-core) and a Node.js broker with tests/moleculer-node's.
(cd js && npm ci --no-audit --no-fund --silent)
(cd tests/moleculer-node && npm ci --no-audit --no-fund --silent)
cargo test --workspace

step "Autobahn TestSuite (gateway in echo mode, Rust client; diffed with tests/autobahn/expected-*.json)"
tests/autobahn/run.sh

step "browser tests (headless Chromium, node --test)"
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "Chromium not found at ${CHROMIUM:-/usr/bin/chromium}: install it (apt-get install chromium) or set CHROMIUM" >&2
  exit 1
fi
# A default build has no fault injection: --test-hooks must be absent from its --help (one
# package, no features: nothing in the command can unify the feature in).
help=$(cargo run -q -p moleculer-ws-server -- --help)
grep -q -- --trigger <<<"$help" || { echo "moleculer-ws-server --help lists no --trigger" >&2; exit 1; }
if grep -q -- --test-hooks <<<"$help"; then
  echo "--test-hooks must not be in a default build of moleculer-ws-server" >&2
  exit 1
fi
# The browser tests switch heartbeat replies off: the gateway binary with the feature test-hooks.
cargo build -p moleculer-ws-server --features moleculer-ws-server/test-hooks -p moleculer-ws-conformance
(cd js && npm test)

step "the Rust client on wasm32 in headless Chromium (wasm-bindgen-test, chromedriver)"
./scripts/test-browser-rust.sh
