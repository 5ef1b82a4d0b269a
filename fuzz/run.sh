#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s each): `fuzz/run.sh [seconds]`.
# Not part of CI. cargo-fuzz needs nightly flags; on the stable toolchain here
# RUSTC_BOOTSTRAP=1 enables them. Crashes land in fuzz/artifacts/<target>/; commit each as a
# regression test.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
export RUSTC_BOOTSTRAP=1
for target in session gateway_inbound cluster_packet; do
  echo "==> $target for ${secs}s"
  cargo fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 | tail -n 4
done
