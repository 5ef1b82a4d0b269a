#!/usr/bin/env bash
# Issue 19, the `!` round trip at the wire: what the server itself takes to answer, apart from
# the load generator's own delays. While loadgen broadcasts to 10k sockets at one rate (one
# step, with the probe socket), tcpdump records on the loopback interface every `!` frame a
# client sends (7 bytes of TCP payload) and every `!` answer (3 bytes); the report pairs each
# `!` with the next answer on the same connection. Needs tcpdump (Debian's package) and root.
#   bench/heartbeat-wire.sh OUT_DIR RATE NAME...   (NAME: ours, before; BENCH_BEFORE_BIN)
#   -> OUT_DIR/wire-NAME.json (loadgen's result) and OUT_DIR/wire-NAME-answers.json (the
#      server's answer times by bench/heartbeat-wire.mjs; the capture itself is deleted)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1; rate=$2; shift 2
command -v tcpdump >/dev/null || { echo "heartbeat-wire: tcpdump is missing (apt-get install tcpdump)" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-target}
ulimit -n "$(ulimit -Hn)"
mkdir -p "$out"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
first=200
for name in "$@"; do
  case "$name" in
    ours) bin="$target/release/moleculer-ws-server" ;;
    before) bin=${BENCH_BEFORE_BIN:?set BENCH_BEFORE_BIN} ;;
    *) echo "heartbeat-wire: unknown server $name" >&2; exit 1 ;;
  esac
  log="$out/wire-$name.log"
  RUST_LOG=error "$bin" --listen 127.0.0.1:0 --trigger > "$log" 2>&1 &
  server=$!; pids+=("$server")
  for _ in $(seq 100); do [ -s "$log" ] && break; sleep 0.1; done
  line=$(head -n 1 "$log"); addr=${line#*http://}; addr=${addr%/}; port=${addr##*:}
  # TCP payload length: IP total length - IP header - TCP header.
  len='(ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2))'
  tcpdump -i lo -n -s 96 -B 65536 -w "$out/wire-$name.pcap" \
    "tcp port $port and ($len == 7 or $len == 3)" 2> "$out/wire-$name.tcpdump.log" &
  dump=$!; pids+=("$dump")
  # tcpdump says "listening on" once it captures.
  for _ in $(seq 100); do grep -q listening "$out/wire-$name.tcpdump.log" && break; sleep 0.1; done
  "$target/release/loadgen" --label "$name" --url "ws://$addr/ws/bench" \
    --trigger "http://$addr/api/websocket/send" --server-pid "$server" \
    --source-first "$first" --source-addrs 8 --sockets 10000 --rates "$rate" \
    --step-secs 10 --probe-ms 20 --deadline-secs 300 --out "$out/wire-$name.json" > /dev/null
  kill "$dump"; wait "$dump" 2>/dev/null || true
  kill "$server"; wait "$server" 2>/dev/null || true
  tcpdump -n -tt -r "$out/wire-$name.pcap" 2>/dev/null > "$out/wire-$name.txt"
  node bench/heartbeat-wire.mjs "$out/wire-$name.txt" "$port" "$out/wire-$name-answers.json"
  rm -f "$out/wire-$name.pcap" "$out/wire-$name.txt" "$out/wire-$name.tcpdump.log"
  first=$((first + 8))
done
