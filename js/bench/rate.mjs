// Message handling rate in Chromium: MoleculerWebsocket (the wasm client) against a page with a
// plain `WebSocket` and the same handler, on the same burst from `blaster` (bench/src/bin).
// See BENCHMARKS.md. Usage (after `cargo build --release -p moleculer-ws-bench
// -p moleculer-ws-server` and scripts/build-wasm.sh):
//   node js/bench/rate.mjs [--rounds 7] [--out bench/results/browser-rate.json]
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { jsDir, repo, target, arg } from "./support.mjs";

const rounds = Number(arg("rounds", "7"));
const out = arg("out", null);

/** Starts `bin args` and resolves with [child, first stdout line]. */
async function start(bin, args) {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "error" } });
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  return [child, line];
}

const [blaster, bline] = await start(path.join(target, "release", "blaster"), []);
const blast = bline.replace(/^blaster on /, "");
const [gateway, gline] = await start(path.join(target, "release", "moleculer-ws-server"),
  ["--listen", "127.0.0.1:0", "--static-dir", jsDir]);
const base = /on (http:\/\/[^/]+)\//.exec(gline)[1];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const chromiumVersion = browser.version();
const results = [];
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${base}/bench/rate.html`);
  const median = (v) => { const s = [...v].sort((a, b) => a - b); const n = s.length;
    return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
  // Chromium hands a page about 25k messages/s here: bursts of 1-2 s keep the `!` reply (queued
  // behind the burst) within the heartbeat timeout.
  for (const [bytes, count] of [[100, 30000], [4096, 10000]]) {
    for (const kind of ["count", "json"]) {
      const url = `${blast}/blast/${count}/${bytes}`;
      const rates = { plain: [], ours: [] };
      for (let r = 0; r < rounds; r++) {
        // Alternate which goes first.
        const order = r % 2 ? ["ours", "plain"] : ["plain", "ours"];
        for (const v of order) {
          const fn = v === "plain" ? "runPlain" : "runOurs";
          const res = await page.evaluate(([f, u, c, k]) => window[f](u, c, k), [fn, url, count, kind]);
          if (res.n !== count) { throw new Error(`${v}: ${res.n} of ${count}`); }
          rates[v].push(count / (res.ms / 1000));
        }
      }
      const plain = median(rates.plain), ours = median(rates.ours);
      console.error(`${String(bytes).padStart(5)} B ${kind.padEnd(5)} plain WebSocket ${plain.toFixed(0).padStart(9)} msg/s  MoleculerWebsocket ${ours.toFixed(0).padStart(9)} msg/s  x${(ours / plain).toFixed(3)}`);
      results.push({ bytes, messages_per_run: count, handler: kind, plain_median_messages_per_sec: plain,
        ours_median_messages_per_sec: ours, ratio: ours / plain, plain_runs: rates.plain, ours_runs: rates.ours });
    }
  }
  if (errors.length) { throw new Error(`page errors: ${errors.join("; ")}`); }
} finally {
  await browser.close();
  blaster.kill();
  gateway.kill();
}
const text = JSON.stringify({ rounds, chromium: chromiumVersion, results }, null, 2);
console.log(text);
if (out) { fs.writeFileSync(out, text + "\n"); }
