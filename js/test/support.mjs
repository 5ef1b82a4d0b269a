// Browser test support: the reference gateway as a child process on 127.0.0.1 and headless
// Chromium driven by playwright-core.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import path from "node:path";
import fs from "node:fs";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const jsDir = path.resolve(here, "..");
const repo = path.resolve(jsDir, "..");
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, "target");
const serverBin = process.env.MWS_SERVER_BIN || path.join(targetDir, "debug", "moleculer-ws-server");
const harnessBin = path.join(targetDir, "debug", "moleculer-ws-conformance");
export const artifacts = path.join(repo, "test-artifacts");

/** Upper bound for anything a test waits for. */
export const WAIT_MS = 15000;

/**
 * Starts the gateway (port 0 = any free port) with the trigger routes, the demo chat, the test
 * hooks (a build with the cargo feature test-hooks) and `staticDir` (default js/) served at /,
 * plus `extraArgs` (e.g. --tls-cert/--tls-key). Resolves to { base, port, stop() }; `base` is
 * https://... when the gateway serves TLS.
 */
export async function startGateway(port = 0, extraArgs = [], staticDir = jsDir) {
  const child = spawn(serverBin, [
    "--listen", `127.0.0.1:${port}`, "--static-dir", staticDir, "--trigger", "--demo", "--test-hooks",
    "--shutdown-timeout", "2s", ...extraArgs,
  ], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: "warn" } });
  const lines = createInterface({ input: child.stdout });
  const [line] = await Promise.race([
    once(lines, "line"),
    once(child, "exit").then(([code]) => { throw new Error(`gateway exited with ${code}`); }),
  ]);
  const m = /on (https?:\/\/[^/]+)\//.exec(line);
  if (!m) { throw new Error(`unexpected gateway output: ${line}`); }
  const base = m[1];
  return {
    base,
    port: Number(new URL(base).port),
    async stop() {
      if (child.exitCode !== null) { return; }
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/** A new page with console errors collected (a page error fails the test that checks it). */
export async function openPage(browser, url) {
  const page = await browser.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") { page.errors.push(m.text()); } });
  await page.goto(url);
  return page;
}

/** Polls `fn` until it returns a truthy value; fails after WAIT_MS with `what`. */
export async function waitFor(what, fn, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) { return v; }
    if (Date.now() > deadline) { throw new Error(`timed out waiting for ${what}`); }
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function post(base, route, body) {
  const resp = await fetch(base + route, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!resp.ok) { throw new Error(`${route}: HTTP ${resp.status}`); }
  return resp;
}

export async function broadcast(base, wsPath, data) {
  await post(base, "/api/websocket/send", { path: wsPath, data });
}

export async function clients(base, wsPath) {
  const counts = await (await fetch(base + "/api/websocket/clients")).json();
  return counts[wsPath] || 0;
}

export async function heartbeatsAnswered(base) {
  const text = await (await fetch(base + "/metrics")).text();
  const m = /^moleculer_ws_heartbeats_answered_total (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

export function saveArtifact(name, buffer) {
  fs.mkdirSync(artifacts, { recursive: true });
  const file = path.join(artifacts, name);
  fs.writeFileSync(file, buffer);
  return file;
}

/**
 * Starts the conformance harness's fault proxy in front of `upstream` ("127.0.0.1:port").
 * Resolves to { addr, set(cmd), stop() }; cmd: pass, blackhole, slice, refuse-upgrades, down,
 * delay:<ms>, cut.
 */
export async function startProxy(upstream) {
  const child = spawn(harnessBin, ["proxy", "--upstream", upstream],
    { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  lines.on("line", (l) => { const w = waiting.shift(); if (w) { w(l); } });
  const first = await new Promise((resolve, reject) => {
    waiting.push(resolve);
    child.once("exit", (code) => reject(new Error(`proxy exited with ${code}`)));
  });
  const m = /^listening (\S+)$/.exec(first);
  if (!m) { throw new Error(`unexpected proxy output: ${first}`); }
  return {
    addr: m[1],
    async set(cmd) {
      const answer = new Promise((resolve) => waiting.push(resolve));
      child.stdin.write(cmd + "\n");
      const a = await answer;
      if (a !== `ok ${cmd}`) { throw new Error(`proxy answered ${a} to ${cmd}`); }
    },
    async stop() {
      if (child.exitCode !== null) { return; }
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Rows in the harness's table form: case, expectation, result, detail. */
export function table(rows) {
  const w = (k, min) => Math.max(min, ...rows.map((r) => r[k].length));
  const wc = w("case", 4), we = w("expectation", 11);
  const lines = [`${"case".padEnd(wc)}  ${"expectation".padEnd(we)}  result  detail`];
  for (const r of rows) {
    lines.push(`${r.case.padEnd(wc)}  ${r.expectation.padEnd(we)}  ${r.result.toUpperCase().padEnd(6)}  ${r.detail}`);
  }
  return lines.join("\n");
}
