// Compares the fan-out results of two builds of the gateway measured in ONE run of
// bench/run.sh (`ours` and `before`, see BENCH_BEFORE_BIN), next to the baselines of the same
// run. Usage: node bench/compare.js DIR   (prints Markdown tables)
'use strict';
const fs = require('fs');
const path = require('path');

const dir = process.argv[2] || path.join(__dirname, 'results');
const read = (f) => {
  try { return JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')); } catch { return null; }
};
const servers = ['ours', 'before', 'naive', 'node'].filter((s) => read(`fanout-${s}.json`));
const fmt = (n, digits = 0) => (n == null ? '—' : Number(n).toLocaleString('en-US', {
  minimumFractionDigits: digits, maximumFractionDigits: digits,
}));
const ratio = (a, b) => (a == null || b == null || b === 0 ? '—' : (a / b).toFixed(3));

const summary = {};
for (const s of servers) {
  const fan = read(`fanout-${s}.json`);
  const idle = read(`idle-${s}.json`);
  const sum = fan.summary || {};
  summary[s] = {
    best250: sum.best_p99_250 ? sum.best_p99_250.deliveries_per_sec : null,
    best250_rate: sum.best_p99_250 ? sum.best_p99_250.rate : null,
    best100: sum.best_p99_100 ? sum.best_p99_100.deliveries_per_sec : null,
    saturation: sum.saturation_deliveries_per_sec ?? null,
    half_probe_p99: sum.half_rate_probe_heartbeat_p99_ms ?? null,
    half_fleet_p99: sum.half_rate_heartbeat_p99_ms ?? null,
    idle_kib: idle && idle.server_rss_per_socket_bytes != null
      ? idle.server_rss_per_socket_bytes / 1024 : null,
    lost: (fan.steps || []).reduce((a, st) => a + (st.lost || 0), 0),
    steps: fan.steps || [],
  };
}

console.log('| figure | ' + servers.join(' | ') + ' | ours/before |');
console.log('| --- |' + servers.map(() => ' ---: |').join('') + ' ---: |');
const row = (name, key, digits = 0) => {
  const cells = servers.map((s) => fmt(summary[s][key], digits));
  const r = summary.before ? ratio(summary.ours[key], summary.before[key]) : '—';
  console.log(`| ${name} | ${cells.join(' | ')} | ${r} |`);
};
row('deliveries/s at p99 ≤ 250 ms, zero loss', 'best250');
row('  at broadcasts/s', 'best250_rate');
row('deliveries/s at p99 ≤ 100 ms, zero loss', 'best100');
row('saturation deliveries/s (last step delivered)', 'saturation');
row('`!` p99 ms at half rate, probe socket', 'half_probe_p99', 1);
row('`!` p99 ms at half rate, fleet sockets', 'half_fleet_p99', 1);
row('idle RSS KiB per socket', 'idle_kib', 1);

console.log('');
const rates = [...new Set(servers.flatMap((s) => summary[s].steps.map((st) => st.rate_target)))]
  .sort((a, b) => a - b);
console.log('| broadcasts/s | ' + servers.map((s) => `${s} deliveries/s | p99 ms | CPU %`).join(' | ') + ' |');
console.log('| ---: |' + servers.map(() => ' ---: | ---: | ---: |').join('') );
for (const rate of rates) {
  const cells = servers.map((s) => {
    const st = summary[s].steps.find((x) => x.rate_target === rate);
    if (!st) return '— | — | —';
    const mark = st.lost || st.closed ? ` (lost ${fmt(st.lost)})` : '';
    return `${fmt(st.deliveries_per_sec)}${mark} | ${fmt(st.latency && st.latency.p99_ms, 0)} | ${fmt(st.server_cpu_pct)}`;
  });
  console.log(`| ${rate} | ${cells.join(' | ')} |`);
}
