#!/usr/bin/env bash
# Runs every benchmark of BENCHMARKS.md in one go and writes JSON under bench/results/ (about
# 30 minutes; wants an otherwise idle machine). Parts, in order (BENCH_PARTS selects some):
#   fanout    for each server (ours = the gateway, naive = the tokio-tungstenite baseline,
#             node = the Node.js `ws` baseline): idle memory at $BENCH_IDLE_SOCKETS sockets,
#             then the fan-out sweep at $BENCH_SOCKETS sockets on one path, with a half-rate
#             step and a dedicated `!` probe socket -> idle-*.json, fanout-*.json
#   payload   the same sweep with 100 B, 4 KiB and 64 KiB broadcasts -> payload-<bytes>-*.json
#   paths     100 paths x 100 sockets, rates per path, isolation checked -> paths-*.json
#   client    Rust client receive path vs a raw tokio-tungstenite loop -> client-recv.json
#   bundle    the browser bundle's gzip size -> bundle.txt
#   browser   Chromium: MoleculerWebsocket vs a plain WebSocket page -> browser-rate.json
#   storm     10k Rust clients, gateway restarted, default and fixed policy -> storm-*.json
#   criterion the session core's micro-benchmarks -> criterion.json
# then bench/report.js -> summary.json and the Markdown tables of BENCHMARKS.md.
# Every server listens on a free port of 127.0.0.1 (port 0) and says which on its first line.
# Traffic goes to 127.0.0.x only; every process is bounded in time and stopped here.
#   BENCH_QUICK=1 bench/run.sh          # a few-minute smoke run (1000 sockets, short steps)
#   BENCH_SERVERS="ours naive" ...      # a subset of servers
#   BENCH_SERVERS="ours before" BENCH_BEFORE_BIN=... # ours against another build of the gateway
#   BENCH_PARTS="fanout storm" ...      # a subset of parts
#   BENCH_PAYLOADS="65536" ...          # the payload part's sizes (default 100 4096 65536)
#   BENCH_NO_REPORT=1 ...               # leave out bench/report.js (for a subset run)
#   BENCH_LOADGEN_ARGS="--deflate --body json" ... # more loadgen options for every sweep
# Servers besides ours, naive, node and before: ours-off (ours with --compression off) and
# node-deflate (Node.js `ws` with its perMessageDeflate).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
out=${BENCH_OUT:-bench/results}
if [ -n "${BENCH_QUICK:-}" ]; then
  sockets=${BENCH_SOCKETS:-1000}; idle_sockets=${BENCH_IDLE_SOCKETS:-2000}
  rates=${BENCH_RATES:-50,200,800}; step_secs=${BENCH_STEP_SECS:-2}
  sweep_rates=${BENCH_SWEEP_RATES:-20,200}; path_rates=${BENCH_PATH_RATES:-5,20}
  storm_clients=${BENCH_STORM_CLIENTS:-1000}; recv_rounds=3; browser_rounds=3
else
  sockets=${BENCH_SOCKETS:-10000}; idle_sockets=${BENCH_IDLE_SOCKETS:-19000}
  rates=${BENCH_RATES:-2,5,10,15,20,25,30,40,50,60,80,100,130,160,200}
  step_secs=${BENCH_STEP_SECS:-5}
  sweep_rates=${BENCH_SWEEP_RATES:-1,2,5,10,20,50,100,200}
  path_rates=${BENCH_PATH_RATES:-1,2,5,10,20,50,100,200}
  storm_clients=${BENCH_STORM_CLIENTS:-10000}; recv_rounds=7; browser_rounds=7
fi
servers=${BENCH_SERVERS:-ours naive node}
parts=${BENCH_PARTS:-fanout payload paths client bundle browser storm criterion}
has() { [[ " $parts " == *" $1 "* ]]; }

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
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/loadavg.txt" >&2

server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT

# first_line FILE: waits (up to 10 s) for the server's first stdout line and prints it.
first_line() {
  for _ in $(seq 1 100); do
    if [ -s "$1" ]; then head -n 1 "$1"; return 0; fi
    sleep 0.1
  done
  echo "no address line in $1" >&2; return 1
}

# start_server NAME: sets server_pid, ws_base (ws://host:port) and trigger_url.
start_server() {
  local log="$out/$1.log" line
  : > "$log"
  case "$1" in
    ours)
      RUST_LOG=error "$target/release/moleculer-ws-server" --listen 127.0.0.1:0 \
        --trigger > "$log" 2>&1 &
      server_pid=$!; line=$(first_line "$log")
      local addr=${line#*http://}; addr=${addr%/}
      ws_base=ws://$addr; trigger_url=http://$addr/api/websocket/send ;;
    ours-off)
      RUST_LOG=error "$target/release/moleculer-ws-server" --listen 127.0.0.1:0 \
        --trigger --compression off > "$log" 2>&1 &
      server_pid=$!; line=$(first_line "$log")
      local addr=${line#*http://}; addr=${addr%/}
      ws_base=ws://$addr; trigger_url=http://$addr/api/websocket/send ;;
    before)
      # Another build of the gateway to compare with, in the same run (e.g. the commit before
      # a change): BENCH_BEFORE_BIN=path, BENCH_BEFORE_ARGS=its options.
      # shellcheck disable=SC2086
      RUST_LOG=error "${BENCH_BEFORE_BIN:?set BENCH_BEFORE_BIN to the gateway binary to compare}" \
        --listen 127.0.0.1:0 ${BENCH_BEFORE_ARGS:-} > "$log" 2>&1 &
      server_pid=$!; line=$(first_line "$log")
      local addr=${line#*http://}; addr=${addr%/}
      ws_base=ws://$addr; trigger_url=http://$addr/api/websocket/send ;;
    naive)
      "$target/release/naive-server" > "$log" 2>&1 &
      server_pid=$!; line=$(first_line "$log")
      ws_base=$(echo "$line" | awk '{print $3}')
      trigger_url=$(echo "$line" | awk '{print $5}')/api/websocket/send ;;
    node|node-deflate)
      local flag=""; [ "$1" = node-deflate ] && flag=--deflate
      # shellcheck disable=SC2086
      node bench/node/server.js 127.0.0.1:0 $flag > "$log" 2>&1 &
      server_pid=$!; line=$(first_line "$log")
      ws_base=ws://${line##* on }; trigger_url=http://${line##* on }/api/websocket/send ;;
  esac
}

# Each run uses its own 8 source addresses, so that sockets of earlier runs left in TIME_WAIT
# never hold the ports a later run needs.
first=1
# sweep NAME OUT ARGS...: a fresh server, one loadgen run on its /ws/bench.
sweep() {
  local name=$1 file=$2; shift 2
  start_server "$name"
  # shellcheck disable=SC2086
  "$loadgen" --label "$name" --url "$ws_base/ws/bench" --trigger "$trigger_url" \
    --server-pid "$server_pid" \
    --source-first "$first" --source-addrs 8 ${BENCH_LOADGEN_ARGS:-} "$@" --out "$out/$file" > /dev/null
  stop_server; first=$((first + 8))
}

if has fanout; then
  for name in $servers; do
    echo "== $name: idle memory at $idle_sockets sockets" >&2
    sweep "$name" "idle-$name.json" --sockets "$idle_sockets" \
      --deadline-secs 300
    echo "== $name: fan-out sweep at $sockets sockets, rates $rates /s" >&2
    sweep "$name" "fanout-$name.json" --sockets "$sockets" \
      --rates "$rates" --step-secs "$step_secs" --half-rate-step --probe-ms 20 \
      --deadline-secs 900
  done
fi

if has payload; then
  # The stamp is about 31 bytes and the padding's key and quotes add 8: the messages come
  # out a little under the nominal size (loadgen's message_bytes_example says how much).
  for bytes in ${BENCH_PAYLOADS:-100 4096 65536}; do
    for name in $servers; do
      echo "== $name: payload $bytes B, $sockets sockets, rates $sweep_rates /s" >&2
      sweep "$name" "payload-$bytes-$name.json" \
        --sockets "$sockets" --payload $((bytes - 45)) --rates "$sweep_rates" \
        --step-secs "$step_secs" --probe-ms 20 --deadline-secs 600
    done
  done
fi

if has paths; then
  for name in $servers; do
    echo "== $name: 100 paths x $((sockets / 100)) sockets, rates per path $path_rates /s" >&2
    sweep "$name" "paths-$name.json" --sockets "$sockets" \
      --paths 100 --in-flight 64 --rates "$path_rates" --step-secs "$step_secs" \
      --probe-ms 20 --deadline-secs 600
  done
fi

if has client; then
  echo "== Rust client receive path vs raw tokio-tungstenite" >&2
  "$target/release/client-recv" --rounds "$recv_rounds" --out "$out/client-recv.json" > /dev/null
fi

if has bundle || has browser; then
  echo "== browser bundle" >&2
  ./scripts/build-wasm.sh | tail -n 1 | tee "$out/bundle.txt"
fi

if has browser; then
  echo "== Chromium: MoleculerWebsocket vs plain WebSocket" >&2
  (cd js && npm ci --no-audit --no-fund --silent)
  node js/bench/rate.mjs --rounds "$browser_rounds" --out "$out/browser-rate.json" > /dev/null
fi

if has storm; then
  for policy in default fixed; do
    echo "== reconnect storm: $storm_clients clients, $policy policy" >&2
    "$target/release/storm" --clients "$storm_clients" --policy "$policy" \
      --out "$out/storm-$policy.json" > /dev/null
  done
fi

if has criterion; then
  echo "== criterion: session core" >&2
  BENCH_OUT="$out" bench/criterion.sh > /dev/null
fi

[ -n "${BENCH_NO_REPORT:-}" ] && exit 0
node bench/report.js "$out" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
