#!/usr/bin/env bash
# Runs the criterion micro-benchmarks of the session core (client-rs/benches/session.rs) and
# writes a compact table: bench/results/criterion.json (median and mean per benchmark, the
# throughput, and each of ours divided by each baseline of the same group and input) plus a
# Markdown table on stdout. About 90 s; wants a quiet machine (the load average is recorded).
#   bench/criterion.sh                       # run, then report
#   bench/criterion.sh classification        # only benchmarks matching a criterion filter
#   CRITERION_REPORT_ONLY=1 bench/criterion.sh  # report the last run's estimates, no run
#   CRITERION_LOG=/tmp/x.txt ...             # where criterion's text output goes (tee)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench/results}
log=${CRITERION_LOG:-/tmp/criterion-session.txt}
target=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
mkdir -p "$out"

start=$(date +%s)
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -z "${CRITERION_REPORT_ONLY:-}" ]; then
  echo "==> cargo bench (load average $loadavg)" >&2
  cargo bench -p moleculer-ws-client --bench session -- --noplot "$@" 2>&1 | tee "$log"
else
  start=0
fi

START=$start LOADAVG=$loadavg TARGET="$target" OUT="$out/criterion.json" python3 - <<'EOF'
import glob, json, os, subprocess, time

# Baselines of each group; every other function of the group is one of ours.
BASELINES = ["serde_value", "copy", "queue_copy", "bare_timer", "backon_next"]
GROUPS = ["classification", "deliver", "heartbeat_cycle", "reconnect_cycle"]
start = int(os.environ["START"])
root = os.path.join(os.environ["TARGET"], "criterion")

rows = []
for est_path in glob.glob(os.path.join(root, "**", "new", "estimates.json"), recursive=True):
    new = os.path.dirname(est_path)
    if os.path.getmtime(est_path) < start:
        continue  # left over from an earlier run
    with open(os.path.join(new, "benchmark.json")) as f:
        meta = json.load(f)
    if meta["group_id"] not in GROUPS:
        continue
    with open(est_path) as f:
        est = json.load(f)
    tp = meta.get("throughput") or {}
    unit, per_iter = next(iter(tp.items()), (None, None))
    rows.append({
        "id": meta["full_id"],
        "group": meta["group_id"],
        "function": meta["function_id"],
        "input": meta["value_str"],
        "role": "baseline" if meta["function_id"] in BASELINES else "ours",
        "median_ns": est["median"]["point_estimate"],
        "mean_ns": est["mean"]["point_estimate"],
        "throughput": {"unit": unit, "per_iter": per_iter} if unit else None,
    })

order = {g: i for i, g in enumerate(GROUPS)}
rows.sort(key=lambda r: (order[r["group"]], r["input"], r["role"] != "ours", r["function"]))
by_key = {(r["group"], r["input"], r["function"]): r for r in rows}
for r in rows:
    if r["throughput"]:
        r["throughput"]["per_second"] = r["throughput"]["per_iter"] / r["median_ns"] * 1e9
    r["ratios"] = {}
    if r["role"] == "ours":
        for b in BASELINES:
            base = by_key.get((r["group"], r["input"], b))
            if base:
                r["ratios"][b] = r["median_ns"] / base["median_ns"]

def rustc():
    try:
        return subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return None

doc = {
    "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "command": "cargo bench -p moleculer-ws-client --bench session -- --noplot",
    "load_average_at_start": os.environ["LOADAVG"],
    "cpus": os.cpu_count(),
    "rustc": rustc(),
    "ratio": "median of ours / median of the baseline, same group and input (below 1: faster)",
    "results": rows,
}
with open(os.environ["OUT"], "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")

def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"

def fmt_tp(t):
    if not t:
        return ""
    v = t["per_second"]
    if t["unit"] == "Bytes":
        for unit, scale in (("GiB/s", 2**30), ("MiB/s", 2**20), ("KiB/s", 2**10)):
            if v >= scale:
                return f"{v / scale:.3g} {unit}"
        return f"{v:.3g} B/s"
    for unit, scale in (("G/s", 1e9), ("M/s", 1e6), ("k/s", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.3g}/s"

print(f"\nload average at start: {doc['load_average_at_start']}; {doc['rustc']}\n")
print("| group | input | benchmark | median | throughput | ours ÷ baseline |")
print("| --- | --- | --- | ---: | ---: | --- |")
for r in rows:
    ratios = ", ".join(f"{v:.2f}× {k}" for k, v in r["ratios"].items())
    if r["role"] == "baseline":
        ratios = "(baseline)"
    print(f"| {r['group']} | {r['input']} | {r['function']} | {fmt_time(r['median_ns'])} "
          f"| {fmt_tp(r['throughput'])} | {ratios} |")
print(f"\n{len(rows)} benchmarks -> {os.environ['OUT']}")
EOF
