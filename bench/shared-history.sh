#!/usr/bin/env bash
# The cost of the shared recovery history (issue 16), in one run on the same generator:
#   fan-out  10,000 sockets on one path, 20..200 broadcasts/s, 5 s per rate, four ways:
#            off (plain sockets), process (?recover=1, in-process history), and ?recover=1 with
#            the history shared on NATS JetStream and on Redis Streams -> fanout-<mode>.json
#   replay   1,000 clients recovering 500 messages each, all at once, for the three history
#            modes -> replay-<mode>.json
# One gateway (the release build) per mode; the engines are local nats-server -js and
# redis-server on free ports. Results in bench/results/issue-16/ (BENCH_OUT; with each
# gateway's warnings and errors in gateway-<mode>.log), then
# bench/shared-history-report.js prints the tables of BENCHMARKS.md. About 7 minutes.
#   RATES=20,50 STEP_SECS=2 SOCKETS=1000 bench/shared-history.sh   # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
out=${BENCH_OUT:-bench/results/issue-16}
rates=${RATES:-20,50,100,150,200}
step_secs=${STEP_SECS:-5}
sockets=${SOCKETS:-10000}
modes=${MODES:-off process nats redis}
clients=${REPLAY_CLIENTS:-1000}
messages=${REPLAY_MESSAGES:-500}
ulimit -n "$(ulimit -Hn)"
cargo build --release -p moleculer-ws-server -p moleculer-ws-bench
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/loadavg.txt" >&2

# The engines, each on a port of its own choosing (nats) or a free one (redis).
nats-server -a 127.0.0.1 -p -1 -js -sd "$work/js" 2> "$work/nats.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "Server is ready" "$work/nats.log" && break; sleep 0.1; done
nats_url="nats://$(grep -o 'Listening for client connections on [0-9.:]*' "$work/nats.log" | awk '{print $NF}')"
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no --dir "$work" > "$work/redis.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "Ready to accept" "$work/redis.log" && break; sleep 0.1; done
redis_url="redis://127.0.0.1:$redis_port"

gw_pid=""
# start_gateway MODE: starts the gateway for MODE, sets gw_pid and addr.
start_gateway() {
  local extra=()
  case "$1" in
    nats) extra=(--transporter "$nats_url" --shared-history on) ;;
    redis) extra=(--transporter "$redis_url" --shared-history on) ;;
  esac
  export RUST_LOG=${GATEWAY_LOG:-warn}
  # Every generator socket comes from 127.0.0.x: the per-address replay budget is raised so
  # that it measures the replay, not the budget.
  "$target/release/moleculer-ws-server" --listen 127.0.0.1:0 --trigger \
    --recovery-replay-rate 1000000000 "${extra[@]}" > "$work/gw-$1.out" 2> "$work/gw-$1.err" &
  gw_pid=$!
  for _ in $(seq 100); do grep -q 'gateway on' "$work/gw-$1.out" && break; sleep 0.1; done
  addr=$(head -1 "$work/gw-$1.out" | sed 's|.*http://||; s|/$||')
}
stop_gateway() { kill -INT "$gw_pid"; wait "$gw_pid" || true; }

for mode in $modes; do
  start_gateway "$mode"
  q="?recover=1"; [ "$mode" = off ] && q=""
  echo "==> fan-out, $mode ($addr)" >&2
  "$target/release/loadgen" --label "$mode" --url "ws://$addr/ws/bench$q" \
    --trigger "http://$addr/api/websocket/send" --sockets "$sockets" --rates "$rates" \
    --step-secs "$step_secs" --server-pid "$gw_pid" --deadline-secs 600 \
    --out "$out/fanout-$mode.json" > "$work/loadgen-$mode.log" 2>&1
  if [ "$mode" != off ]; then
    echo "==> replay, $mode" >&2
    "$target/release/replay" --label "$mode" --url "ws://$addr/ws/replay" \
      --trigger "http://$addr/api/websocket/send" --clients "$clients" --messages "$messages" \
      --out "$out/replay-$mode.json" > "$work/replay-$mode.log" 2>&1
  fi
  stop_gateway
  # The gateway's warnings and errors, without the log's colour codes.
  sed 's/\x1b\[[0-9;]*m//g' "$work/gw-$mode.err" | grep -E " (WARN|ERROR) " > "$out/gateway-$mode.log" || true
done
node bench/shared-history-report.js "$out"
