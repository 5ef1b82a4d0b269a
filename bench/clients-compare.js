// Prints the before/after tables of bench/clients-before-after.sh from its result files:
// for each case, the median over rounds of each round's median (msg/s) and of its ratio to the
// round's baseline (raw tokio-tungstenite / plain WebSocket page).
//   node bench/clients-compare.js <out-dir>
const fs = require("node:fs");
const path = require("node:path");
const dir = process.argv[2];
if (!dir) { console.error("usage: node bench/clients-compare.js <out-dir>"); process.exit(2); }
const median = (v) => { const s = [...v].sort((a, b) => a - b); const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const load = (prefix, v) => fs.readdirSync(dir).filter((f) => f.startsWith(`${prefix}-${v}-`))
  .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")));
const fmt = (n) => Math.round(n).toLocaleString("en-US");

function table(title, prefix, key, cols) {
  const runs = { before: load(prefix, "before"), after: load(prefix, "after") };
  if (!runs.after.length) { return; }
  console.log(`\n${title} (${runs.before.length} before and ${runs.after.length} after runs)\n`);
  console.log(`| case | ${cols.map((c) => `before ${c[0]} | after ${c[0]} | after / before`).join(" | ")} |`);
  console.log(`| --- |${" ---: | ---: | ---: |".repeat(cols.length)}`);
  const cases = runs.after[0].results.map(key);
  for (const c of [...new Set(cases)]) {
    const cells = cols.map(([, pick]) => {
      const v = {};
      for (const side of ["before", "after"]) {
        v[side] = median(runs[side].flatMap((r) => r.results.filter((x) => key(x) === c).map(pick)));
      }
      const big = v.after > 10;
      return `${big ? fmt(v.before) : v.before.toFixed(2)} | ${big ? fmt(v.after) : v.after.toFixed(2)} | **${(v.after / v.before).toFixed(3)}**`;
    });
    console.log(`| ${c} | ${cells.join(" | ")} |`);
  }
}

const recvKey = (x) => `${x.runtime} ${x.bytes} B ${x.handler} ${x.variant}`;
table("Rust client receive path (client-recv)", "client-recv", recvKey, [
  ["msg/s", (x) => x.median_messages_per_sec],
  ["/ raw", (x) => x.ratio_to_raw],
]);
table("Chromium message rate (rate.mjs)", "browser-rate", (x) => `${x.bytes} B ${x.handler}`, [
  ["MoleculerWebsocket msg/s", (x) => x.ours_median_messages_per_sec],
  ["ours / plain", (x) => x.ratio],
]);
