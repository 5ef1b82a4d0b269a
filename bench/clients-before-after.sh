#!/usr/bin/env bash
# The clients of this checkout against those of an earlier commit, in one run on one machine:
# the Rust client's receive path (`client-recv`: ours vs a raw tokio-tungstenite loop on the
# same `blaster` burst) and the Chromium message rate (`js/bench/rate.mjs`: MoleculerWebsocket
# vs a plain WebSocket page), each run for `before` and `after`, alternating, $ROUNDS times.
# The gateway and the burst server are this checkout's for both (only the client differs).
#   bench/clients-before-after.sh <rev> [out-dir]     # e.g. 0c6de1a bench/results/issue-15
#   ROUNDS=7 PARTS=client bench/clients-before-after.sh <rev> <out-dir>   # more rounds, one part
#   CLIENT_ARGS="--sizes 4096 --runtimes current --rounds 15" ...        # client-recv's own options
# Writes client-recv-{before,after}-<i>.json, browser-rate-{before,after}-<i>.json and
# bundle-{before,after}.txt, then prints the medians (bench/clients-compare.js).
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bench/clients-before-after.sh <rev> [out-dir]}
out=${2:-bench/results/clients-before-after}
rounds=${ROUNDS:-3}
parts=${PARTS:-client browser}   # PARTS=client: only the Rust client; PARTS=browser: only Chromium
read -r -a client_args <<<"${CLIENT_ARGS:-}"   # e.g. "--sizes 4096 --runtimes current --rounds 15"
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
mkdir -p "$out"
src="$target/before-src"

echo "== before: $rev" >&2
git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
git worktree add --detach "$src" "$rev" >/dev/null
trap 'git worktree remove --force "$src" >/dev/null 2>&1 || true' EXIT
(cd "$src" && CARGO_TARGET_DIR="$target" cargo build -q --release -p moleculer-ws-bench --bin client-recv)
mkdir -p "$target/before-bin"
cp "$target/release/client-recv" "$target/before-bin/client-recv"
(cd "$src" && CARGO_TARGET_DIR="$target" ./scripts/build-wasm.sh | tail -n 1) | tee "$out/bundle-before.txt"

echo "== after: $(git rev-parse --short HEAD)" >&2
cargo build -q --release -p moleculer-ws-bench -p moleculer-ws-server
# client-recv starts the `blaster` beside it: the same burst server for both.
cp "$target/release/blaster" "$target/before-bin/blaster"
./scripts/build-wasm.sh | tail -n 1 | tee "$out/bundle-after.txt"
(cd js && npm ci --no-audit --no-fund --silent)
rm -rf "$src/js/node_modules"
ln -s "$PWD/js/node_modules" "$src/js/node_modules"

for i in $(seq 1 "$rounds"); do
  # Alternate which goes first.
  if [ $((i % 2)) -eq 1 ]; then order="before after"; else order="after before"; fi
  for v in $order; do
    echo "== round $i: $v" >&2
    if [ "$v" = before ]; then bin="$target/before-bin/client-recv"; js="$src/js"; else bin="$target/release/client-recv"; js=js; fi
    if [[ " $parts " == *" client "* ]]; then
      "$bin" "${client_args[@]}" --out "$out/client-recv-$v-$i.json" > /dev/null
    fi
    if [[ " $parts " == *" browser "* ]]; then
      CARGO_TARGET_DIR="$target" node "$js/bench/rate.mjs" --out "$out/browser-rate-$v-$i.json" > /dev/null
    fi
  done
done
node bench/clients-compare.js "$out"
