// The "Shared frames" table of BENCHMARKS.md from bench/shared-frames.sh's results:
//   node bench/shared-frames-report.mjs bench/results/issue-19
import { readFileSync } from "node:fs";

const dir = process.argv[2] ?? "bench/results/issue-19";
const servers = [["ours", "the gateway"], ["naive", "naive tokio-tungstenite"], ["node", "Node.js ws"]];
const mib = (b) => (b / 1048576).toFixed(0);
const runs = Object.fromEntries(servers.map(([name]) =>
  [name, JSON.parse(readFileSync(`${dir}/payload-65536-${name}.json`, "utf8"))]));
const rates = runs.ours.steps.map((s) => s.rate_target);
const lines = [];
lines.push(`| server | sockets | idle RSS | ${rates.map((r) => `RSS at ${r}/s (deliveries/s)`).join(" | ")} | most RSS |`);
lines.push(`| --- | ---: | ---: | ${rates.map(() => "---:").join(" | ")} | ---: |`);
const peak = {};
for (const [name, title] of servers) {
  const run = runs[name];
  peak[name] = Math.max(...run.steps.map((s) => s.server_rss_bytes));
  const cells = run.steps.map((s) =>
    `${mib(s.server_rss_bytes)} MiB (${Math.round(s.deliveries_per_sec).toLocaleString("en-US")})`);
  lines.push(`| ${title} | ${run.sockets_open.toLocaleString("en-US")} | ${mib(run.server_rss_idle_bytes)} MiB | ${cells.join(" | ")} | ${mib(peak[name])} MiB |`);
}
lines.push("");
lines.push(`Most RSS, the gateway against Node.js ws: ${(peak.ours / peak.node).toFixed(2)}x; against the naive server: ${(peak.ours / peak.naive).toFixed(2)}x.`);
console.log(lines.join("\n"));
