// Draws the fan-out and payload sweeps of a bench/run.sh results folder as SVG charts: for each
// sweep, delivered messages per second against the p99 publish-to-receive latency at each rate
// step, one line per server (log scales). No dependencies; run by bench/report.js, or alone:
//   node bench/charts.js [RESULTS_DIR] [OUT_DIR]     (defaults: bench/results, charts/)
'use strict';
const fs = require('fs');
const path = require('path');

const COLORS = { ours: '#1f77b4', naive: '#ff7f0e', node: '#2ca02c' };
const LABELS = { ours: 'ours', naive: 'naive tokio-tungstenite', node: 'Node ws' };

/** Ticks 1, 2, 5 × 10^k inside [lo, hi]. */
function ticks(lo, hi) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) out.push(v);
    }
  }
  return out;
}

const fmt = (v) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : `${v}`);

/** One chart: `series` is { server: [[deliveries_per_sec, p99_ms], ...] }. */
function chart(title, series) {
  const W = 640, H = 400, L = 70, R = 20, T = 40, B = 60;
  const pts = Object.values(series).flat().filter(([x, y]) => x > 0 && y > 0);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const [x0, x1] = [10 ** Math.floor(Math.log10(Math.min(...xs))), 10 ** Math.ceil(Math.log10(Math.max(...xs)))];
  const [y0, y1] = [10 ** Math.floor(Math.log10(Math.min(...ys))), 10 ** Math.ceil(Math.log10(Math.max(...ys)))];
  const X = (v) => L + ((Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * (W - L - R);
  const Y = (v) => H - B - ((Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * (H - T - B);
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  o.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${title}</text>`);
  for (const v of ticks(x0, x1)) {
    o.push(`<line x1="${X(v)}" y1="${T}" x2="${X(v)}" y2="${H - B}" stroke="#eee"/>`);
    o.push(`<text x="${X(v)}" y="${H - B + 16}" text-anchor="middle">${fmt(v)}</text>`);
  }
  for (const v of ticks(y0, y1)) {
    o.push(`<line x1="${L}" y1="${Y(v)}" x2="${W - R}" y2="${Y(v)}" stroke="#eee"/>`);
    o.push(`<text x="${L - 6}" y="${Y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
  }
  o.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>`);
  o.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">deliveries per second (log)</text>`);
  o.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">p99 latency, ms (log)</text>`);
  let ly = T + 14;
  for (const [server, points] of Object.entries(series)) {
    const c = COLORS[server] || '#333';
    const ok = points.filter(([x, y]) => x > 0 && y > 0);
    o.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${ok.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of ok) o.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${c}"/>`);
    o.push(`<line x1="${L + 12}" y1="${ly - 4}" x2="${L + 32}" y2="${ly - 4}" stroke="${c}" stroke-width="2"/>`);
    o.push(`<text x="${L + 38}" y="${ly}">${LABELS[server] || server}</text>`);
    ly += 16;
  }
  o.push('</svg>');
  return o.join('\n') + '\n';
}

/** Writes the charts of `dir` into `out`; returns the files written. */
function drawAll(dir, out) {
  const read = (f) => { try { return JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')); } catch { return null; } };
  const sweeps = [
    ['fanout', 'fanout-%s.json', 'Fan-out, 10,000 sockets, 100 B'],
    ['payload-100', 'payload-100-%s.json', 'Payload 100 B, 10,000 sockets'],
    ['payload-4096', 'payload-4096-%s.json', 'Payload 4 KiB, 10,000 sockets'],
    ['payload-65536', 'payload-65536-%s.json', 'Payload 64 KiB, 10,000 sockets'],
  ];
  const written = [];
  fs.mkdirSync(out, { recursive: true });
  for (const [name, pattern, title] of sweeps) {
    const series = {};
    for (const s of ['ours', 'naive', 'node']) {
      const r = read(pattern.replace('%s', s));
      if (r && r.steps) series[s] = r.steps.map((st) => [st.deliveries_per_sec, st.latency && st.latency.p99_ms]);
    }
    if (!Object.keys(series).length) continue;
    const file = path.join(out, `${name}.svg`);
    fs.writeFileSync(file, chart(title, series));
    written.push(file);
  }
  return written;
}

module.exports = { drawAll, chart };

if (require.main === module) {
  const dir = process.argv[2] || path.join(__dirname, 'results');
  const out = process.argv[3] || path.join(__dirname, '..', 'charts');
  for (const f of drawAll(dir, out)) console.log(`wrote ${path.relative(process.cwd(), f)}`);
}
