// Summarises the JSON results of bench/run.sh: writes summary.json next to them and prints a
// Markdown table with ours / baseline ratios. Usage: node bench/report.js DIR [cores] [cpu]
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
    idle_heartbeat_p99_ms: fan ? fan.idle_heartbeat.p99_ms : null,
  };
}
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
  servers: rows,
  ratios,
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
  ['`!` round trip p99 (ms) at half the best rate', 'half_rate_heartbeat_p99_ms', 2],
  ['`!` round trip p99 (ms) idle', 'idle_heartbeat_p99_ms', 2],
];
const bases = present.filter((s) => s !== 'ours');
lines.push(`| metric | ${present.join(' | ')} | ${bases.map((b) => `ours/${b}`).join(' | ')} |`);
lines.push(`| --- | ${present.map(() => '---:').join(' | ')} | ${bases.map(() => '---:').join(' | ')} |`);
for (const [name, key, d] of metrics) {
  const vals = present.map((s) => fmt(rows[s][key], d));
  const rs = bases.map((b) => fmt(ratio(rows.ours && rows.ours[key], rows[b][key]), 2));
  lines.push(`| ${name} | ${vals.join(' | ')} | ${rs.join(' | ')} |`);
}
if (bundle) lines.push('', bundle);
console.log(lines.join('\n'));
