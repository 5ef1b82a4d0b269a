#!/usr/bin/env bash
# History on vs off: the same gateway binary, 10k sockets, with and without ?recover=1.
set -u
cd "$(dirname "$0")/.."
ulimit -n 20000
mkdir -p bench/results/recovery
for mode in off on; do
  ./target/release/moleculer-ws-server --listen 127.0.0.1:0 --trigger > /tmp/gw-$mode.out 2>/dev/null &
  pid=$!
  for i in $(seq 50); do grep -q 'gateway on' /tmp/gw-$mode.out && break; sleep 0.1; done
  addr=$(head -1 /tmp/gw-$mode.out | sed 's|.*http://||; s|/$||')
  q=""; [ "$mode" = on ] && q="?recover=1"
  ./target/release/loadgen --label "history-$mode" --url "ws://$addr/ws/bench$q" \
    --trigger "http://$addr/api/websocket/send" --sockets 10000 --rates 20,50,100,150 \
    --step-secs 5 --server-pid $pid --deadline-secs 300 \
    --out bench/results/recovery/history-$mode.json > /tmp/hist-$mode.log 2>&1
  kill -INT $pid; wait $pid
done
