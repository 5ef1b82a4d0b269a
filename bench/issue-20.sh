#!/usr/bin/env bash
# Issue 20's figures in one run, on one load generator (about 8 minutes; wants an otherwise
# idle machine): the gateway's fan-out over event streams next to WebSockets. For each
# transport, bench/run.sh's fanout part on a fresh gateway (127.0.0.1 port 0): idle memory at
# 10k connections, then the sweep at 10k connections on one path (stamp-only broadcasts at 2 … 500/s, the
# half-rate step, one extra WebSocket sending `!` every 20 ms as the probe). The event streams
# are loadgen's `--transport sse` (bench/src/sse.rs: `?frames=1`, as this project's clients
# open them; they send no `!`).
#   -> websocket/{idle,fanout}-ours.json, sse/{idle,fanout}-ours.json
# then bench/issue-20-report.mjs -> summary.json and the table of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/issue-20/run
export BENCH_NO_REPORT=1 BENCH_IDLE_SOCKETS=10000 BENCH_SERVERS=ours BENCH_PARTS=fanout
# Past bench/run.sh's 200/s, until each transport saturates (the sweep stops at the first step
# with loss, p99 over 2 s or a publisher below 80 % of the rate).
export BENCH_RATES=${BENCH_RATES:-2,5,10,20,50,100,150,200,250,300,350,400,500}
rm -rf "$out"; mkdir -p "$out"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" > "$out/loadavg-start.txt"
BENCH_OUT=$out/websocket bench/run.sh
BENCH_OUT=$out/sse BENCH_LOADGEN_ARGS="--transport sse" bench/run.sh
node bench/issue-20-report.mjs "$out"
