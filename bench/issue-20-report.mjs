// Issue 20's table of BENCHMARKS.md from one run of bench/issue-20.sh:
//   node bench/issue-20-report.mjs bench/results/issue-20/run   -> DIR/summary.json, table on stdout
import { readFileSync, writeFileSync } from "node:fs";

const dir = process.argv[2] ?? "bench/results/issue-20/run";
const load = (file) => JSON.parse(readFileSync(`${dir}/${file}`, "utf8"));
const n0 = (x) => (x == null ? "—" : Math.round(x).toLocaleString("en-US"));
const f1 = (x) => (x == null ? "—" : x.toFixed(1));
const f2 = (x) => (x == null ? "—" : x.toFixed(2));
const ok = (s) => s.lost === 0 && s.closed === 0 && (s.misdelivered ?? 0) === 0;
const bestOf = (run, p99) => {
  const good = run.steps.filter((s) => ok(s) && s.latency.p99_ms <= p99);
  return good.length ? good.reduce((a, b) => (b.deliveries_per_sec > a.deliveries_per_sec ? b : a)) : null;
};

const transports = [["websocket", "WebSocket"], ["sse", "event stream (SSE)"]];
const summary = {};
for (const [name] of transports) {
  const idle = load(`${name}/idle-ours.json`);
  const run = load(`${name}/fanout-ours.json`);
  const best = bestOf(run, 250);
  summary[name] = {
    transport: run.transport ?? "websocket",
    sockets: run.sockets_open,
    idle_sockets: idle.sockets_open,
    rss_per_connection_bytes: idle.server_rss_per_socket_bytes,
    best_deliveries_per_sec: best?.deliveries_per_sec ?? null,
    best_rate: best?.rate_target ?? null,
    best_p99_ms: best?.latency.p99_ms ?? null,
    saturation_deliveries_per_sec: run.summary.saturation_deliveries_per_sec,
    half_rate: run.half_rate_step?.rate_target ?? null,
    half_rate_probe_p99_ms: run.half_rate_step?.probe_heartbeat?.p99_ms ?? null,
    steps: run.steps.map((s) => ({ rate: s.rate_target, deliveries_per_sec: s.deliveries_per_sec,
      p99_ms: s.latency.p99_ms, lost: s.lost, closed: s.closed, server_cpu_pct: s.server_cpu_pct,
      server_cpu_secs_per_million: s.server_cpu_secs / (s.received / 1e6),
      loadgen_cpu_pct: s.loadgen_cpu_pct })),
  };
}
const ws = summary.websocket, sse = summary.sse;
const ratio = (a, b) => (a != null && b ? a / b : null);
summary.ratios = {
  best_deliveries_per_sec: ratio(sse.best_deliveries_per_sec, ws.best_deliveries_per_sec),
  rss_per_connection: ratio(sse.rss_per_connection_bytes, ws.rss_per_connection_bytes),
};
writeFileSync(`${dir}/summary.json`, JSON.stringify(summary, null, 2) + "\n");

const stamp = load("websocket/fanout-ours.json").message_bytes_example;
const out = [];
out.push(`10,000 connections on one path, stamp-only broadcasts (the first is ${stamp} B), the same gateway and generator:`);
out.push("");
out.push("| transport | best deliveries/s (p99 ≤ 250 ms, zero loss) | its p99 | most deliveries/s seen | server RSS per connection, idle | `!` p99 of the probe WebSocket at half rate |");
out.push("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const [name, title] of transports) {
  const r = summary[name];
  out.push(`| ${title} | ${n0(r.best_deliveries_per_sec)} (${r.best_rate ?? "—"}/s) | ${f1(r.best_p99_ms)} ms | ${n0(r.saturation_deliveries_per_sec)} | ${f1(r.rss_per_connection_bytes / 1024)} KiB | ${f1(r.half_rate_probe_p99_ms)} ms (${r.half_rate ?? "—"}/s) |`);
}
out.push(`| event stream / WebSocket | ${f2(summary.ratios.best_deliveries_per_sec)}x | | ${f2(ratio(sse.saturation_deliveries_per_sec, ws.saturation_deliveries_per_sec))}x | ${f2(summary.ratios.rss_per_connection)}x | |`);
out.push("");
out.push("What each side spent (CPU seconds of the gateway per million deliveries, and the load generator's CPU, both over the step):");
out.push("");
out.push("| rate | WebSocket: gateway s/M | generator | event stream: gateway s/M | generator | gateway, stream / socket |");
out.push("| ---: | ---: | ---: | ---: | ---: | ---: |");
const costRates = [...new Set(ws.steps.map((s) => s.rate))].filter((r) => r >= 50 && sse.steps.some((s) => s.rate === r && ok(s)) && ws.steps.some((s) => s.rate === r && ok(s)));
summary.cost = {};
for (const rate of costRates) {
  const w = ws.steps.find((s) => s.rate === rate), e = sse.steps.find((s) => s.rate === rate);
  summary.cost[rate] = e.server_cpu_secs_per_million / w.server_cpu_secs_per_million;
  out.push(`| ${rate} | ${f2(w.server_cpu_secs_per_million)} | ${Math.round(w.loadgen_cpu_pct)} % | ${f2(e.server_cpu_secs_per_million)} | ${Math.round(e.loadgen_cpu_pct)} % | ${f2(summary.cost[rate])}x |`);
}
writeFileSync(`${dir}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
out.push("");
out.push("Each step (rate per second: deliveries/s, p99):");
out.push("");
out.push("| rate | WebSocket | event stream |");
out.push("| ---: | ---: | ---: |");
const rates = [...new Set([...ws.steps, ...sse.steps].map((s) => s.rate))].sort((a, b) => a - b);
for (const rate of rates) {
  const cell = (r) => {
    const s = r.steps.find((x) => x.rate === rate);
    if (!s) return "—";
    const loss = s.lost || s.closed ? `, lost ${n0(s.lost)}, closed ${s.closed}` : "";
    return `${n0(s.deliveries_per_sec)}, ${f1(s.p99_ms)} ms${loss}`;
  };
  out.push(`| ${rate} | ${cell(ws)} | ${cell(sse)} |`);
}
console.log(out.join("\n"));
