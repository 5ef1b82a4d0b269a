#!/usr/bin/env bash
# Issue 19's figures in one run, on one load generator (about 25 minutes; wants an otherwise
# idle machine). Every server listens on 127.0.0.1 port 0; 10k sockets on one path.
#   1. the fan-out sweep with the `!` probe and the half-rate step: the gateway, the gateway
#      before issue 19 (BENCH_BEFORE_BIN, built at 10494a6), naive, node  -> fanout-*.json
#   2. 100 B broadcasts: the gateway and before                          -> payload-100-*.json
#   3. about 1 KiB of JSON records (bench/src/stamp.rs), every socket offering
#      permessage-deflate: the gateway with compression on and off, Node.js `ws` with and
#      without its perMessageDeflate, naive; one socket in 10 reads (and inflates) every
#      message, the others count frames (bench/src/counting.rs): inflating 10k sockets' messages
#      was the generator's limit at 10 broadcasts/s    -> compression/payload-1024-*.json
#   4. the `!` answer at the wire (tcpdump) at the gateway's half rate of part 1, the gateway
#      and before                                                     -> wire-*-answers.json
# then bench/issue-19-report.mjs -> summary.json and the tables of BENCHMARKS.md.
#   BENCH_BEFORE_BIN=/path/to/gateway-10494a6 bench/issue-19.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/issue-19/run
: "${BENCH_BEFORE_BIN:?set BENCH_BEFORE_BIN to the gateway built at 10494a6}"
export BENCH_BEFORE_BIN BENCH_BEFORE_ARGS=--trigger BENCH_NO_REPORT=1 BENCH_IDLE_SOCKETS=1000
rm -rf "$out"; mkdir -p "$out"
# bench/run.sh writes loadavg.txt each time it starts; this is the reading before any part.
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" > "$out/loadavg-start.txt"
BENCH_OUT=$out BENCH_PARTS=fanout BENCH_SERVERS="ours before naive node" bench/run.sh
BENCH_OUT=$out BENCH_PARTS=payload BENCH_PAYLOADS=100 BENCH_SERVERS="ours before" bench/run.sh
BENCH_OUT=$out/compression BENCH_PARTS=payload BENCH_PAYLOADS=1024 \
  BENCH_SERVERS="ours ours-off node-deflate node naive" \
  BENCH_LOADGEN_ARGS="--deflate --body json --read-every 10" bench/run.sh
rate=$(node -e 'const r = require(process.argv[1]); console.log(r.half_rate_step.rate_target)' \
  "$PWD/$out/fanout-ours.json")
bench/heartbeat-wire.sh "$out" "$rate" ours before
node bench/issue-19-report.mjs "$out"
