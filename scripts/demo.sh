#!/usr/bin/env bash
# The demo: builds the browser client (js/websocket.js), then runs the gateway with the demo page
# (--demo: the sample chat and ./js at /) and the trigger routes (--trigger) on
# http://127.0.0.1:3000/ (embedded broker, no external service). Extra arguments go to the
# gateway, e.g. `./scripts/demo.sh --listen 127.0.0.1:8080`. The chat and the trigger are
# open to anyone who reaches the gateway: keep it on a private address.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-wasm.sh
exec cargo run -p moleculer-ws-server -- --demo --trigger "$@"
