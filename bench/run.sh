#!/usr/bin/env bash
# Runs every benchmark of BENCHMARKS.md in one go and writes JSON under bench/results/:
# for each server (ours = the gateway, naive = the tokio-tungstenite baseline, node = the Node.js
# `ws` baseline): idle memory at $BENCH_IDLE_SOCKETS sockets, then the fan-out sweep at
# $BENCH_SOCKETS sockets on one path with a half-rate step for the `!` round trip; then the
# browser bundle size; then summary.json and a Markdown table (bench/report.js).
# Traffic goes to 127.0.0.x only; every process is bounded in time and stopped here.
#   BENCH_QUICK=1 bench/run.sh       # a 1-minute smoke run (1000 sockets)
#   BENCH_SERVERS="ours naive" ...   # a subset
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
out=${BENCH_OUT:-bench/results}
if [ -n "${BENCH_QUICK:-}" ]; then
  sockets=${BENCH_SOCKETS:-1000}; idle_sockets=${BENCH_IDLE_SOCKETS:-2000}
  rates=${BENCH_RATES:-50,200,800}; step_secs=${BENCH_STEP_SECS:-2}
else
  sockets=${BENCH_SOCKETS:-10000}; idle_sockets=${BENCH_IDLE_SOCKETS:-19000}
  rates=${BENCH_RATES:-2,5,10,15,20,25,30,40,50,60,80,100,130,160,200}
  step_secs=${BENCH_STEP_SECS:-5}
fi
servers=${BENCH_SERVERS:-ours naive node}
payload=${BENCH_PAYLOAD:-0}

# 19k sockets need 19k descriptors on each side: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((idle_sockets + 100)) ]; then
  echo "fd limit $(ulimit -n) is below $((idle_sockets + 100)); lowering idle sockets" >&2
  idle_sockets=$(( $(ulimit -n) - 200 ))
fi

cargo build --release -p moleculer-ws-server -p moleculer-ws-bench
(cd bench/node && npm ci --no-audit --no-fund --silent)
mkdir -p "$out"
loadgen="$target/release/loadgen"

server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "port $1 did not open" >&2; return 1
}

# start_server NAME: sets server_pid, ws_url, trigger_url.
start_server() {
  case "$1" in
    ours)
      RUST_LOG=error "$target/release/moleculer-ws-server" --listen 127.0.0.1:39300 \
        --no-static --no-chat > "$out/ours.log" 2>&1 &
      server_pid=$!; wait_port 39300
      ws_url=ws://127.0.0.1:39300/ws/bench; trigger_url=http://127.0.0.1:39300/api/websocket/send ;;
    naive)
      "$target/release/naive-server" --listen 127.0.0.1:39310 --trigger-listen 127.0.0.1:39311 \
        > "$out/naive.log" 2>&1 &
      server_pid=$!; wait_port 39310; wait_port 39311
      ws_url=ws://127.0.0.1:39310/ws/bench; trigger_url=http://127.0.0.1:39311/api/websocket/send ;;
    node)
      node bench/node/server.js 127.0.0.1:39320 > "$out/node.log" 2>&1 &
      server_pid=$!; wait_port 39320
      ws_url=ws://127.0.0.1:39320/ws/bench; trigger_url=http://127.0.0.1:39320/api/websocket/send ;;
  esac
}

# Each run uses its own 8 source addresses, so that sockets of earlier runs left in TIME_WAIT
# never hold the ports a later run needs.
first=1
for name in $servers; do
  echo "== $name: idle memory at $idle_sockets sockets" >&2
  start_server "$name"
  "$loadgen" --label "$name" --url "$ws_url" --trigger "$trigger_url" --server-pid "$server_pid" \
    --sockets "$idle_sockets" --source-first "$first" --source-addrs 8 --deadline-secs 300 \
    --out "$out/idle-$name.json" > /dev/null
  stop_server; first=$((first + 8))

  echo "== $name: fan-out sweep at $sockets sockets, rates $rates /s" >&2
  start_server "$name"
  "$loadgen" --label "$name" --url "$ws_url" --trigger "$trigger_url" --server-pid "$server_pid" \
    --sockets "$sockets" --source-first "$first" --source-addrs 8 --rates "$rates" \
    --step-secs "$step_secs" --payload "$payload" --half-rate-step --deadline-secs 900 \
    --out "$out/fanout-$name.json" > /dev/null
  stop_server; first=$((first + 8))
done

if [ -z "${BENCH_SKIP_WASM:-}" ]; then
  echo "== browser bundle" >&2
  ./scripts/build-wasm.sh | tail -n 1 | tee "$out/bundle.txt"
fi

node bench/report.js "$out" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
