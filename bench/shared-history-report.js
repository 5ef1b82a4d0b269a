// Prints the tables of BENCHMARKS.md "Shared history" from bench/shared-history.sh's results.
//   node bench/shared-history-report.js [dir]
"use strict";
const fs = require("fs");
const path = require("path");
const dir = process.argv[2] || path.join(__dirname, "results", "issue-16");
const read = (f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
const modes = ["off", "process", "nats", "redis"];
const names = { off: "recovery off", process: "in-process", nats: "shared, NATS JetStream", redis: "shared, Redis Streams" };
const fan = Object.fromEntries(modes.map((m) => [m, read(`fanout-${m}.json`)]));
const int = (x) => Math.round(x).toLocaleString("en-US");
const ms = (x) => `${x.toFixed(1)} ms`;
const rates = fan.off.steps.map((s) => s.rate_target);
console.log("| broadcasts/s × " + int(fan.off.sockets_open) + " sockets | " +
  modes.map((m) => `${names[m]}: deliveries/s, p99, lost`).join(" | ") + " | NATS / in-process | Redis / in-process |");
console.log("| ---: |" + modes.map(() => " ---: |").join("") + " ---: | ---: |");
for (const rate of rates) {
  const step = (m) => fan[m].steps.find((s) => s.rate_target === rate);
  const cells = modes.map((m) => {
    const s = step(m);
    return s ? `${int(s.deliveries_per_sec)}, ${ms(s.latency.p99_ms)}, ${s.lost}` : "–";
  });
  const ratio = (m) => (step(m) && step("process") ? (step(m).deliveries_per_sec / step("process").deliveries_per_sec).toFixed(3) + "x" : "–");
  console.log(`| ${rate} | ${cells.join(" | ")} | ${ratio("nats")} | ${ratio("redis")} |`);
}
console.log("");
console.log("| | " + modes.map((m) => names[m]).join(" | ") + " |");
console.log("| --- |" + modes.map(() => " ---: |").join(""));
const best = (m) => fan[m].summary.best_p99_250;
console.log("| best deliveries/s at p99 ≤ 250 ms, zero loss | " + modes.map((m) => best(m) ? `${int(best(m).deliveries_per_sec)} (${best(m).rate}/s)` : "–").join(" | ") + " |");
console.log("| ratio to in-process | " + modes.map((m) => best(m) && best("process") ? (best(m).deliveries_per_sec / best("process").deliveries_per_sec).toFixed(3) + "x" : "–").join(" | ") + " |");
console.log("| server RSS at the end of the sweep | " + modes.map((m) => `${(fan[m].steps.at(-1).server_rss_bytes / 1048576).toFixed(1)} MiB`).join(" | ") + " |");
console.log("");
const r0 = read("replay-process.json");
console.log(`| replay: ${int(r0.clients)} clients × ${int(r0.messages_each)} messages, at once | all done | per client p50 | p99 | replayed messages/s | failed |`);
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const m of ["process", "nats", "redis"]) {
  const r = read(`replay-${m}.json`);
  console.log(`| ${names[m]} | ${ms(r.all_done_ms)} | ${ms(r.per_client_ms.p50)} | ${ms(r.per_client_ms.p99)} | ${int(r.replayed_messages_per_sec)} | ${r.failed} |`);
}
