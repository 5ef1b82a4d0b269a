#!/usr/bin/env bash
# The demo: builds the browser client into js/pkg, then runs the gateway with the demo page
# on http://127.0.0.1:3000/ (embedded broker, no external service). Extra arguments go to the
# gateway, e.g. `./scripts/demo.sh --listen 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-wasm.sh
exec cargo run -p moleculer-ws-server -- --static-dir js "$@"
