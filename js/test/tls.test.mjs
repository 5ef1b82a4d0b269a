// The demo page over https, its socket over wss, against the gateway's own TLS
// (--tls-cert/--tls-key). The certificate is made now with the openssl CLI; Chromium is told
// to accept it (--ignore-certificate-errors, in this test only).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { startGateway, openPage } from "./support.mjs";

let dir;
let browser;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mws-tls-"));
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"), "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ], { stdio: "ignore" });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--ignore-certificate-errors",
    ],
  });
});

after(async () => {
  await browser?.close();
  if (dir) { fs.rmSync(dir, { recursive: true, force: true }); }
});

test("demo page over https receives a broadcast over wss", async (t) => {
  const gw = await startGateway(0, [
    "--tls-cert", path.join(dir, "cert.pem"), "--tls-key", path.join(dir, "key.pem"),
  ]);
  t.after(() => gw.stop());
  assert.match(gw.base, /^https:\/\/127\.0\.0\.1:\d+$/);
  const page = await openPage(browser, `${gw.base}/`);
  t.after(() => page.close());
  assert.equal(new URL(page.url()).protocol, "https:");

  // Node's fetch does not trust the certificate: the page (same origin) makes the REST calls.
  const clients = () => page.evaluate(async () =>
    ((await (await fetch("/api/websocket/clients")).json())["/ws/chat"]) || 0);
  await page.waitForFunction(() => document.getElementById("status").textContent === "connected to ws/chat");
  // The listener speaks only TLS: the open socket is a wss:// one.
  assert.equal(await clients(), 1);

  const status = await page.evaluate(async () => (await fetch("/api/websocket/send", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path: "ws/chat", data: { type: "message", user: "tls", text: "over wss", time: 0 } }),
  })).status);
  assert.equal(status, 204);
  await page.waitForFunction(() => document.getElementById("outDiv").textContent.includes("tls: over wss"));
  assert.deepEqual(page.errors, []);
});
