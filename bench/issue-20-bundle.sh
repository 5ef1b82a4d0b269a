#!/usr/bin/env bash
# The drop-in's size at each step of issue 20 (what the event-stream transport costs): for each
# commit, scripts/build-wasm.sh in a worktree (sharing this checkout's target/ and js/node_modules),
# then the single file gzipped by Node's zlib at level 9 and by GNU gzip -9.
#   bench/issue-20-bundle.sh c9cacf6 f15413c HEAD   -> bench/results/issue-20/bundle-steps.txt
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
out=bench/results/issue-20/bundle-steps.txt
mkdir -p "$(dirname "$out")"
echo "commit  zlib-9  gzip-9  (js/websocket.js, the single file)" > "$out"
for rev in "$@"; do
  wt=$(mktemp -d)
  git worktree add -q --detach "$wt" "$rev"
  ln -s "$here/js/node_modules" "$wt/js/node_modules"
  (cd "$wt" && CARGO_TARGET_DIR="$here/target" ./scripts/build-wasm.sh > /dev/null)
  zlib=$(node -e 'const z=require("zlib"),fs=require("fs");console.log(z.gzipSync(fs.readFileSync(process.argv[1]),{level:9}).length)' "$wt/js/websocket.js")
  gnu=$(gzip -9 -c "$wt/js/websocket.js" | wc -c)
  echo "$(git rev-parse --short "$rev")  $zlib  $gnu" | tee -a "$out"
  git worktree remove --force "$wt"
done
