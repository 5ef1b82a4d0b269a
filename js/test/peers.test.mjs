// Mixed peers: Chromium's native WebSocket (no library) against the gateway: heartbeat,
// ignored frames, fan-out to many sockets of one page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, launchBrowser, openPage, waitFor, broadcast, clients } from "./support.mjs";

let browser, gw;
before(async () => { browser = await launchBrowser(); gw = await startGateway(); });
after(async () => { await browser?.close(); await gw?.stop(); });

test("native WebSocket: `!` is answered, other frames ignored", async (t) => {
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  const answers = await page.evaluate(() => new Promise((resolve, reject) => {
    const ws = new WebSocket(new URL("/ws/native/hb", location.href).href.replace(/^http/, "ws"));
    const got = [];
    ws.onopen = () => { ws.send("hello"); ws.send(new Uint8Array([1, 2])); ws.send("!"); ws.send("!again"); };
    ws.onmessage = (e) => { got.push(e.data); if (got.length === 2) { ws.close(); resolve(got); } };
    ws.onerror = () => reject(new Error("socket error"));
    setTimeout(() => resolve(got), 5000);
  }));
  assert.deepEqual(answers, ["!", "!"]);
});

test("native WebSocket: fan-out to 50 sockets of one page", async (t) => {
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  const n = 50;
  await page.evaluate((count) => {
    window.native = { got: [], open: 0 };
    for (let i = 0; i < count; i++) {
      const ws = new WebSocket(new URL("/ws/native/fan", location.href).href.replace(/^http/, "ws"));
      ws.onopen = () => { window.native.open++; };
      ws.onmessage = (e) => window.native.got.push(e.data);
    }
  }, n);
  await waitFor("50 sockets at the gateway", async () => (await clients(gw.base, "/ws/native/fan")) === n);
  await broadcast(gw.base, "ws/native/fan", { to: "all" });
  await page.waitForFunction((count) => window.native.got.length === count, n, { timeout: 15000 });
  const got = await page.evaluate(() => window.native.got);
  assert.ok(got.every((m) => m === "{\"to\":\"all\"}"), JSON.stringify(got.slice(0, 3)));
});
