// Summarises the JSON results of bench/run.sh: writes summary.json next to them, prints a
// Markdown table with ours / baseline ratios, and draws the sweeps as SVG charts
// (bench/charts.js). Usage: node bench/report.js DIR [cores] [cpu]
'use strict';
const fs = require('fs');
const path = require('path');

const dir = process.argv[2] || path.join(__dirname, 'results');
const read = (f) => {
  try { return JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')); } catch { return null; }
};
const servers = ['ours', 'naive', 'node'];
const rows = {};
for (const s of servers) {
  const idle = read(`idle-${s}.json`);
  const fan = read(`fanout-${s}.json`);
  if (!idle && !fan) continue;
  const sum = (fan && fan.summary) || {};
  const best250 = sum.best_p99_250 || null;
  const step250 = best250 && fan.steps.find((st) => st.rate_target === best250.rate);
  rows[s] = {
    idle_sockets: idle ? idle.sockets_open : null,
    idle_rss_per_socket_kib: idle && idle.server_rss_per_socket_bytes != null
      ? idle.server_rss_per_socket_bytes / 1024 : null,
    fanout_sockets: fan ? fan.sockets_open : null,
    best_p99_250_rate: best250 ? best250.rate : null,
    best_p99_250_deliveries_per_sec: best250 ? best250.deliveries_per_sec : null,
    best_p99_250_p99_ms: best250 ? best250.p99_ms : null,
    best_p99_250_server_cpu_pct: step250 ? step250.server_cpu_pct : null,
    best_p99_100_deliveries_per_sec: sum.best_p99_100 ? sum.best_p99_100.deliveries_per_sec : null,
    saturation_deliveries_per_sec: sum.saturation_deliveries_per_sec ?? null,
    half_rate_heartbeat_p99_ms: sum.half_rate_heartbeat_p99_ms ?? null,
    half_rate_probe_heartbeat_p99_ms: sum.half_rate_probe_heartbeat_p99_ms ?? null,
    idle_heartbeat_p99_ms: fan ? fan.idle_heartbeat.p99_ms : null,
    idle_probe_heartbeat_p99_ms: fan && fan.idle_probe_heartbeat ? fan.idle_probe_heartbeat.p99_ms : null,
  };
}

// The other sweeps: payload sizes and 100 paths.
const sweepOf = (fan) => {
  if (!fan) return null;
  const sum = fan.summary || {};
  const steps = fan.steps || [];
  const last = steps[steps.length - 1] || {};
  return {
    best_p99_250_deliveries_per_sec: sum.best_p99_250 ? sum.best_p99_250.deliveries_per_sec : null,
    best_p99_250_rate: sum.best_p99_250 ? sum.best_p99_250.rate : null,
    best_p99_100_deliveries_per_sec: sum.best_p99_100 ? sum.best_p99_100.deliveries_per_sec : null,
    saturation_deliveries_per_sec: sum.saturation_deliveries_per_sec ?? null,
    lost: steps.reduce((a, st) => a + (st.lost || 0), 0),
    misdelivered: sum.misdelivered ?? null,
    last_rate: last.rate_target ?? null,
    last_rate_published: last.rate_published ?? null,
    paths: fan.paths ?? 1,
  };
};
const sweeps = {};
for (const s of servers) {
  for (const bytes of [100, 4096, 65536]) {
    const r = sweepOf(read(`payload-${bytes}-${s}.json`));
    if (r) (sweeps[`payload_${bytes}`] ||= {})[s] = r;
  }
  const p = sweepOf(read(`paths-${s}.json`));
  if (p) (sweeps.paths_100 ||= {})[s] = p;
}
const clientRecv = read('client-recv.json');
const browserRate = read('browser-rate.json');
const storm = { default: read('storm-default.json'), fixed: read('storm-fixed.json') };
const criterion = read('criterion.json');
let loadavg = null;
try { loadavg = fs.readFileSync(path.join(dir, 'loadavg.txt'), 'utf8').trim(); } catch { /* none */ }
let bundle = null;
try { bundle = fs.readFileSync(path.join(dir, 'bundle.txt'), 'utf8').trim(); } catch { /* skipped */ }

const ratio = (a, b) => (a != null && b != null && b !== 0 ? a / b : null);
const ratios = {};
for (const base of ['naive', 'node']) {
  if (!rows.ours || !rows[base]) continue;
  ratios[`ours_over_${base}`] = Object.fromEntries(
    Object.keys(rows.ours).map((k) => [k, ratio(rows.ours[k], rows[base][k])]));
}
const summary = {
  date: new Date().toISOString(),
  cores: Number(process.argv[3]) || null,
  cpu: process.argv[4] || null,
  loadavg,
  servers: rows,
  ratios,
  sweeps,
  client_recv: clientRecv && clientRecv.results,
  browser_rate: browserRate && browserRate.results,
  storm,
  criterion_rows: criterion ? (criterion.rows || criterion.results || null) : null,
  bundle,
};
fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');

const fmt = (v, d = 0) => (v == null ? '—' : Number(v).toLocaleString('en-US', {
  maximumFractionDigits: d, minimumFractionDigits: d }));
const lines = [];
const present = servers.filter((s) => rows[s]);
const metrics = [
  ['idle RSS per socket (KiB), lower is better', 'idle_rss_per_socket_kib', 1],
  ['fan-out: deliveries/s at p99 <= 250 ms, zero loss', 'best_p99_250_deliveries_per_sec', 0],
  ['  broadcasts/s of that step', 'best_p99_250_rate', 0],
  ['  server CPU % of that step', 'best_p99_250_server_cpu_pct', 0],
  ['fan-out: deliveries/s at p99 <= 100 ms, zero loss', 'best_p99_100_deliveries_per_sec', 0],
  ['fan-out: saturation deliveries/s', 'saturation_deliveries_per_sec', 0],
  ['`!` round trip p99 (ms) at half the best rate, fleet sockets', 'half_rate_heartbeat_p99_ms', 2],
  ['`!` round trip p99 (ms) at half the best rate, probe socket', 'half_rate_probe_heartbeat_p99_ms', 2],
  ['`!` round trip p99 (ms) idle, fleet sockets', 'idle_heartbeat_p99_ms', 2],
  ['`!` round trip p99 (ms) idle, probe socket', 'idle_probe_heartbeat_p99_ms', 2],
];
const bases = present.filter((s) => s !== 'ours');
lines.push(`| metric | ${present.join(' | ')} | ${bases.map((b) => `ours/${b}`).join(' | ')} |`);
lines.push(`| --- | ${present.map(() => '---:').join(' | ')} | ${bases.map(() => '---:').join(' | ')} |`);
for (const [name, key, d] of metrics) {
  const vals = present.map((s) => fmt(rows[s][key], d));
  const rs = bases.map((b) => fmt(ratio(rows.ours && rows.ours[key], rows[b][key]), 2));
  lines.push(`| ${name} | ${vals.join(' | ')} | ${rs.join(' | ')} |`);
}

// Payload sizes and paths: one row per sweep and server.
if (Object.keys(sweeps).length) {
  lines.push('', '| sweep | server | deliveries/s at p99 <= 250 ms (rate) | at p99 <= 100 ms | saturation deliveries/s | lost | misdelivered | ours/this at p99 <= 250 | ours/this saturation |');
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, by] of Object.entries(sweeps)) {
    for (const s of servers.filter((x) => by[x])) {
      const r = by[s], o = by.ours;
      lines.push(`| ${name} | ${s} | ${fmt(r.best_p99_250_deliveries_per_sec)} (${fmt(r.best_p99_250_rate)}/s) | ${fmt(r.best_p99_100_deliveries_per_sec)} | ${fmt(r.saturation_deliveries_per_sec)} | ${fmt(r.lost)} | ${fmt(r.misdelivered)} | ${s === 'ours' ? '' : fmt(ratio(o && o.best_p99_250_deliveries_per_sec, r.best_p99_250_deliveries_per_sec), 2)} | ${s === 'ours' ? '' : fmt(ratio(o && o.saturation_deliveries_per_sec, r.saturation_deliveries_per_sec), 2)} |`);
    }
  }
}
if (clientRecv) {
  lines.push('', '| Rust client receive path | runtime | handler | variant | median msg/s | MB/s | / raw |', '| --- | --- | --- | --- | ---: | ---: | ---: |');
  for (const r of clientRecv.results) {
    lines.push(`| ${r.bytes} B | ${r.runtime} | ${r.handler} | ${r.variant} | ${fmt(r.median_messages_per_sec)} | ${fmt(r.median_mb_per_sec, 1)} | ${fmt(r.ratio_to_raw, 3)} |`);
  }
}
if (browserRate) {
  lines.push('', '| Chromium | handler | plain WebSocket msg/s | MoleculerWebsocket msg/s | ours/plain |', '| --- | --- | ---: | ---: | ---: |');
  for (const r of browserRate.results) {
    lines.push(`| ${r.bytes} B | ${r.handler} | ${fmt(r.plain_median_messages_per_sec)} | ${fmt(r.ours_median_messages_per_sec)} | ${fmt(r.ratio, 3)} |`);
  }
}
if (storm.default || storm.fixed) {
  lines.push('', '| reconnect storm | clients | all back after (s) | p50 (s) | p99 (s) | peak opens/s | 100-ms intervals with opens | failed attempts |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [k, r] of Object.entries(storm)) {
    if (!r) continue;
    lines.push(`| ${k} | ${fmt(r.clients)} | ${fmt(r.all_back_secs, 2)} | ${fmt(r.back_p50_secs, 2)} | ${fmt(r.back_p99_secs, 2)} | ${fmt(r.peak_opens_per_sec)} | ${fmt(r.intervals_100ms_with_opens)} | ${fmt(r.failed_attempts)} |`);
  }
}
if (bundle) lines.push('', bundle);
if (loadavg) lines.push('', loadavg);
console.log(lines.join('\n'));

// The sweeps as SVG charts: for the default results folder, into charts/ next to
// BENCHMARKS.md (which shows them); for another folder, into its own charts/.
const defaultDir = path.join(__dirname, 'results');
const chartsOut = path.resolve(dir) === defaultDir ? path.join(__dirname, '..', 'charts') : path.join(dir, 'charts');
for (const f of require('./charts').drawAll(dir, chartsOut)) console.error(`wrote ${f}`);
