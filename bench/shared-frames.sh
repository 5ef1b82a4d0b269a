#!/usr/bin/env bash
# Issue 19, shared frames: server RSS while broadcasting 64 KiB messages to 10k sockets, the
# gateway against the naive tokio-tungstenite server and Node.js `ws`, in one run on the same
# generator (bench/run.sh's payload sweep at 1, 2 and 5 broadcasts/s), then the table of
# BENCHMARKS.md "Shared frames". About 5 minutes; wants an otherwise idle machine.
#   bench/shared-frames.sh            -> bench/results/issue-19/payload-65536-*.json
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/issue-19
BENCH_PARTS=payload BENCH_PAYLOADS=65536 BENCH_SERVERS="ours naive node" \
  BENCH_SWEEP_RATES=${BENCH_SWEEP_RATES:-1,2,5} BENCH_OUT=$out BENCH_NO_REPORT=1 bench/run.sh
node bench/shared-frames-report.mjs "$out"
