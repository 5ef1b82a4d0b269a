// The browser client's numbers for BENCHMARKS.md ("Browser client: one file, one socket for all
// tabs"), in one run on one machine:
//   - served size (gzip -9, brotli -11) of the single file and the split build, next to socket.io-client's
//     and centrifuge-js's browser bundles (npm, js/ dev dependencies);
//   - page start to the first message (ms) in headless Chromium, single file vs split build,
//     a fresh browser context (no cache) per page, alternating, while the gateway broadcasts
//     to the channel every 5 ms;
//   - sockets on the gateway for 10 tabs of one browser, with and without `shared`;
//   - hand-over: the leader's tab closes, time until another tab's channel is open again.
// Usage (after `cargo build --release -p moleculer-ws-server` and scripts/build-wasm.sh):
//   node js/bench/browser-client.mjs [--runs 15] [--out bench/results/issue-17/browser-client.json]
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import fs from "node:fs";
import path from "node:path";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { execFileSync } from "node:child_process";
import { chromium } from "playwright-core";
import { jsDir, repo, target, arg } from "./support.mjs";

const runs = Number(arg("runs", "15"));
const out = arg("out", null);

const gz = (file) => gzipSync(fs.readFileSync(path.join(jsDir, file)), { level: 9 }).length;
const br = (file) => brotliCompressSync(fs.readFileSync(path.join(jsDir, file)),
  { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
const both = (files) => ({ files, gzip: files.reduce((n, f) => n + gz(f), 0), brotli: files.reduce((n, f) => n + br(f), 0) });
const version = (pkg) => JSON.parse(fs.readFileSync(path.join(jsDir, "node_modules", pkg, "package.json"), "utf8")).version;
// gzip -9 and brotli -11 of what a page downloads.
const gnuGzip = (file) => execFileSync("gzip", ["-9", "-c", path.join(jsDir, file)],
  { maxBuffer: 1 << 24 }).length;
const sizes = {
  single: { ...both(["websocket.js"]), gnuGzip: gnuGzip("websocket.js") },
  split: both(["split/websocket.js", "split/websocket.wasm"]),
  "socket.io-client": { version: version("socket.io-client"), ...both(["node_modules/socket.io-client/dist/socket.io.min.js"]) },
  "centrifuge-js": { version: version("centrifuge"), ...both(["node_modules/centrifuge/dist/centrifuge.js"]) },
};

const bin = path.join(target, "release", "moleculer-ws-server");
const gateway = spawn(bin, ["--listen", "127.0.0.1:0", "--static-dir", jsDir, "--trigger", "--demo"],
  { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "error" } });
const [line] = await once(createInterface({ input: gateway.stdout }), "line");
const base = /on (http:\/\/[^/]+)\//.exec(line)[1];
const post = (route, body) => fetch(base + route, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});
const clients = async (p) => ((await (await fetch(base + "/api/websocket/clients")).json())[p] || 0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, what) {
  for (let i = 0; i < 3000; i++) { if (await fn()) { return; } await sleep(5); }
  throw new Error(`timed out: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const summary = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs });

// Page start to first message.
let pushing = true;
const pusher = (async () => { let n = 0; while (pushing) { await post("/api/websocket/send", { path: "/ws/bench-first", data: n++ }); await sleep(5); } })();
const first = { single: [], split: [] }, opened = { single: [], split: [] };
for (let i = 0; i < runs; i++) {
  for (const build of (i % 2 ? ["split", "single"] : ["single", "split"])) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/bench/first-${build}.html`);
    await page.waitForFunction(() => window.first !== undefined, null, { timeout: 15000 });
    const [f, o] = await page.evaluate(() => [window.first, window.opened]);
    first[build].push(Math.round(f));
    opened[build].push(Math.round(o));
    await context.close();
  }
}
pushing = false;
await pusher;

// Sockets for 10 tabs.
const sockets = {};
for (const shared of [false, true]) {
  const p = shared ? "/ws/bench-tabs-shared" : "/ws/bench-tabs-plain";
  const context = await browser.newContext();
  const pages = [];
  for (let i = 0; i < 10; i++) {
    const page = await context.newPage();
    await page.goto(`${base}/test/pages/shared.html`);
    await page.evaluate(([q, s]) => window.start(q, { shared: s }), [p, shared]);
    pages.push(page);
  }
  await until(async () => (await Promise.all(pages.map((pg) => pg.evaluate(() => ws.state())))).every((s) => s === "open"), "10 tabs open");
  sockets[shared ? "shared" : "plain"] = await clients(p);
  await context.close();
}

// Hand-over: the leader's tab closes; time until another tab is open again as the leader.
const handOver = [];
for (let i = 0; i < runs; i++) {
  const p = `/ws/bench-handover-${i}`;
  const context = await browser.newContext();
  const pages = [];
  for (let j = 0; j < 3; j++) {
    const page = await context.newPage();
    await page.goto(`${base}/test/pages/shared.html`);
    await page.evaluate((q) => window.start(q), p);
    pages.push(page);
  }
  await until(async () => (await Promise.all(pages.map((pg) => pg.evaluate(() => ws.state())))).every((s) => s === "open"), "3 tabs open");
  const flags = await Promise.all(pages.map((pg) => pg.evaluate(() => ws.isLeader())));
  const leader = pages[flags.indexOf(true)];
  const rest = pages.filter((pg) => pg !== leader);
  const t0 = performance.now();
  await leader.close();
  await until(async () => {
    const s = await Promise.all(rest.map((pg) => pg.evaluate(() => [ws.isLeader(), ws.state()])));
    return s.some(([l, st]) => l && st === "open");
  }, "a new leader open");
  handOver.push(Math.round(performance.now() - t0));
  await context.close();
}

const chromiumVersion = browser.version();
await browser.close();
gateway.kill("SIGTERM");

const result = {
  sizes,
  firstMessageMs: { single: summary(first.single), split: summary(first.split) },
  openMs: { single: summary(opened.single), split: summary(opened.split) },
  socketsFor10Tabs: sockets,
  handOverMs: summary(handOver),
  chromium: chromiumVersion,
};
console.log(JSON.stringify(result, null, 2));
if (out) {
  fs.mkdirSync(path.dirname(path.resolve(repo, out)), { recursive: true });
  fs.writeFileSync(path.resolve(repo, out), JSON.stringify(result, null, 2) + "\n");
}
