// Issue 19's tables of BENCHMARKS.md from one run of bench/issue-19.sh:
//   node bench/issue-19-report.mjs bench/results/issue-19/run   -> DIR/summary.json, tables on stdout
import { readFileSync, writeFileSync, existsSync } from "node:fs";

const dir = process.argv[2] ?? "bench/results/issue-19/run";
const load = (file) => JSON.parse(readFileSync(`${dir}/${file}`, "utf8"));
const n0 = (x) => Math.round(x).toLocaleString("en-US");
const f1 = (x) => (x == null ? "—" : x.toFixed(1));
const f2 = (x) => (x == null ? "—" : x.toFixed(2));
const ok = (s) => s.lost === 0 && s.closed === 0 && s.misdelivered === 0;
const okAt = (s, p99) => ok(s) && s.latency.p99_ms <= p99;
const bestOf = (run, p99 = 250) => {
  const good = run.steps.filter((s) => okAt(s, p99));
  return good.length ? good.reduce((a, b) => (b.deliveries_per_sec > a.deliveries_per_sec ? b : a)) : null;
};
const summary = {};
const out = [];

// 1. The control lane: `!` round trips at half the best rate.
const lane = [["ours", "the gateway"], ["before", "the gateway before issue 19 (10494a6)"],
  ["naive", "naive tokio-tungstenite"], ["node", "Node.js ws"]];
const stampBytes = load("fanout-ours.json").message_bytes_example;
out.push(`\`!\` round trip, 10,000 sockets on one path, stamp-only broadcasts (the first is ${stampBytes} B):`);
out.push("");
out.push("| server | best deliveries/s (p99 ≤ 250 ms, zero loss) | half rate | `!` p99, probe socket | `!` p99, fleet sockets | idle: probe / fleet |");
out.push("| --- | ---: | ---: | ---: | ---: | ---: |");
summary.lane = {};
for (const [name, title] of lane) {
  const run = load(`fanout-${name}.json`);
  const best = bestOf(run);
  const half = run.half_rate_step;
  const row = {
    best_deliveries_per_sec: best?.deliveries_per_sec ?? null,
    best_rate: best?.rate_target ?? null,
    half_rate: half?.rate_target ?? null,
    probe_p99_ms: half?.probe_heartbeat?.p99_ms ?? null,
    fleet_p99_ms: half?.heartbeat?.p99_ms ?? null,
    idle_probe_p99_ms: run.idle_probe_heartbeat?.p99_ms ?? null,
    idle_fleet_p99_ms: run.idle_heartbeat?.p99_ms ?? null,
  };
  summary.lane[name] = row;
  out.push(`| ${title} | ${best ? `${n0(best.deliveries_per_sec)} (${best.rate_target}/s)` : "—"} | ${row.half_rate ?? "—"}/s | ${f1(row.probe_p99_ms)} ms | ${f1(row.fleet_p99_ms)} ms | ${f2(row.idle_probe_p99_ms)} / ${f2(row.idle_fleet_p99_ms)} ms |`);
}
out.push("");
summary.wire = {};
const wireRows = [];
for (const [name, title] of lane.slice(0, 2)) {
  if (!existsSync(`${dir}/wire-${name}-answers.json`)) continue;
  const answers = load(`wire-${name}-answers.json`);
  const run = load(`wire-${name}.json`);
  const step = run.steps[0];
  summary.wire[name] = { rate: step.rate_target, answers, client_probe_p99_ms: step.probe_heartbeat?.p99_ms,
    client_fleet_p99_ms: step.heartbeat?.p99_ms, lost: step.lost };
  wireRows.push(`| ${title} | ${step.rate_target}/s | ${f1(answers.probe.p99_ms)} ms (${f1(step.probe_heartbeat?.p99_ms)} ms) | ${f1(answers.fleet.p99_ms)} ms (${f1(step.heartbeat?.p99_ms)} ms) | ${answers.probe.count + answers.fleet.count} | ${answers.unanswered} |`);
}
if (wireRows.length) {
  out.push("The same at the wire (tcpdump on the loopback interface: from the client's `!` frame to the answer; in brackets the same step's round trip at the client):");
  out.push("");
  out.push("| server | rate | `!` p99, probe socket | `!` p99, fleet sockets | answers timed | `!` unanswered at the end |");
  out.push("| --- | ---: | ---: | ---: | ---: | ---: |");
  out.push(...wireRows);
  out.push("");
}

// 2. 100 B: the gateway against itself before issue 19.
const p100 = { ours: load("payload-100-ours.json"), before: load("payload-100-before.json") };
const p100Bytes = load("payload-100-ours.json").message_bytes_example;
out.push(`100 B broadcasts (the payload part's nominal size; the first message is ${p100Bytes} B), 10,000 sockets, the gateway now and before issue 19:`);
out.push("");
out.push("| broadcasts/s | now: deliveries/s | p99 ms | CPU % | before: deliveries/s | p99 ms | CPU % |");
out.push("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
const byRate = (run) => Object.fromEntries(run.steps.map((s) => [s.rate_target, s]));
const [now100, before100] = [byRate(p100.ours), byRate(p100.before)];
const rates100 = [...new Set([...Object.keys(now100), ...Object.keys(before100)].map(Number))].sort((a, b) => a - b);
const cell = (s) => (s ? `${n0(s.deliveries_per_sec)}${ok(s) ? "" : " (loss)"} | ${f1(s.latency.p99_ms)} | ${n0(s.server_cpu_pct)}` : "— | — | —");
for (const r of rates100) out.push(`| ${r} | ${cell(now100[r])} | ${cell(before100[r])} |`);
const b100 = { ours: bestOf(p100.ours), before: bestOf(p100.before) };
const fan = { ours: summary.lane.ours.best_deliveries_per_sec, before: summary.lane.before.best_deliveries_per_sec };
summary.regression_100b = {
  best_now: b100.ours?.deliveries_per_sec ?? null, best_before: b100.before?.deliveries_per_sec ?? null,
  ratio: b100.ours && b100.before ? b100.ours.deliveries_per_sec / b100.before.deliveries_per_sec : null,
  fanout_ratio: fan.ours && fan.before ? fan.ours / fan.before : null,
};
out.push("");
out.push(`Best deliveries/s at p99 ≤ 250 ms with zero loss, now / before: 100 B ${f2(summary.regression_100b.ratio)}x, stamp only ${f2(summary.regression_100b.fanout_ratio)}x.`);
out.push("");

// 3. Compression: about 1 KiB of JSON records, every socket offering permessage-deflate.
const comp = [["ours", "the gateway, compression on (default)"], ["ours-off", "the gateway, --compression off"],
  ["node-deflate", "Node.js ws, perMessageDeflate"], ["node", "Node.js ws"], ["naive", "naive tokio-tungstenite"]];
const runs = Object.fromEntries(comp.map(([name]) => [name, load(`compression/payload-1024-${name}.json`)]));
const size = runs.ours.message_bytes_example;
out.push(`About 1 KiB of JSON records per broadcast (the first is ${n0(size)} B; bench/src/stamp.rs), 10,000 sockets, each offering permessage-deflate:`);
out.push("");
out.push("| server | bytes on the wire per delivery | vs uncompressed | best deliveries/s (p99 ≤ 250 ms, zero loss) | vs the same server uncompressed |");
out.push("| --- | ---: | ---: | ---: | ---: |");
summary.compression = { message_bytes: size };
const wirePer = (run) => {
  const good = run.steps.filter(ok);
  const bytes = good.reduce((a, s) => a + s.wire_bytes_received, 0);
  const got = good.reduce((a, s) => a + s.received, 0);
  return got ? bytes / got : null;
};
const plainOf = { ours: "ours-off", "ours-off": "ours-off", "node-deflate": "node", node: "node", naive: "naive" };
for (const [name, title] of comp) {
  const run = runs[name];
  const best = bestOf(run);
  const plain = runs[plainOf[name]];
  const row = {
    wire_bytes_per_delivery: wirePer(run),
    best_deliveries_per_sec: best?.deliveries_per_sec ?? null,
    best_rate: best?.rate_target ?? null,
  };
  row.wire_vs_uncompressed = row.wire_bytes_per_delivery / wirePer(plain);
  const plainBest = bestOf(plain)?.deliveries_per_sec;
  row.best_vs_uncompressed = row.best_deliveries_per_sec && plainBest ? row.best_deliveries_per_sec / plainBest : null;
  summary.compression[name] = row;
  out.push(`| ${title} | ${f1(row.wire_bytes_per_delivery)} | ${f2(row.wire_vs_uncompressed)}x | ${best ? `${n0(best.deliveries_per_sec)} (${best.rate_target}/s)` : "—"} | ${row.best_vs_uncompressed == null ? "—" : `${f2(row.best_vs_uncompressed)}x`} |`);
}
out.push("");
out.push("CPU per delivery (server CPU time over the step's deliveries), at each rate both sustained with zero loss:");
out.push("");
out.push("| broadcasts/s | gateway, compression on: µs | off: µs | on / off | Node.js ws perMessageDeflate: µs | plain: µs | deflate / plain |");
out.push("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
const cpuPer = (s) => (s && ok(s) && s.server_cpu_secs != null ? (s.server_cpu_secs * 1e6) / s.received : null);
const steps = Object.fromEntries(comp.map(([name]) => [name, byRate(runs[name])]));
summary.compression.cpu = [];
for (const r of runs.ours.steps.map((s) => s.rate_target)) {
  const [on, off, nd, np] = ["ours", "ours-off", "node-deflate", "node"].map((n) => cpuPer(steps[n][r]));
  if (on == null || off == null) continue;
  const row = { rate: r, on_us: on, off_us: off, ratio: on / off, node_deflate_us: nd, node_us: np,
    node_ratio: nd != null && np != null ? nd / np : null };
  summary.compression.cpu.push(row);
  out.push(`| ${r} | ${f2(on)} | ${f2(off)} | ${f2(row.ratio)}x | ${f2(nd)} | ${f2(np)} | ${f2(row.node_ratio)}${row.node_ratio == null ? "" : "x"} |`);
}
writeFileSync(`${dir}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
console.log(out.join("\n"));
