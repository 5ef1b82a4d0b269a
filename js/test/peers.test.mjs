// Mixed peers: Chromium's native WebSocket (no library) against the gateway: heartbeat,
// ignored frames, fan-out to many sockets of one page, permessage-deflate; and Node's `ws`
// clients with and without permessage-deflate.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
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

test("native WebSocket: permessage-deflate is negotiated, a compressed broadcast arrives whole", async (t) => {
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  await page.evaluate(() => new Promise((resolve, reject) => {
    const ws = new WebSocket(new URL("/ws/native/deflate", location.href).href.replace(/^http/, "ws"));
    window.deflate = { ws, got: [] };
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("socket error"));
    ws.onmessage = (e) => window.deflate.got.push(e.data);
  }));
  assert.equal(await page.evaluate(() => window.deflate.ws.extensions),
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  const data = { rows: Array.from({ length: 40 }, (_, i) => ({ id: i, name: `row ${i}`, tags: ["a", "b"] })) };
  await broadcast(gw.base, "ws/native/deflate", data);
  // Chromium compresses what it sends too: the `!` still gets its answer.
  await page.evaluate(() => window.deflate.ws.send("!"));
  await page.waitForFunction(() => window.deflate.got.length === 2, null, { timeout: 15000 });
  const got = await page.evaluate(() => window.deflate.got);
  assert.equal(got[0], JSON.stringify(data));
  assert.ok(got[0].length > 1500, `${got[0].length}`);
  assert.equal(got[1], "!");
});

test("Node ws clients: with permessage-deflate (their default) and without, a broadcast arrives whole", async (t) => {
  const url = `${gw.base.replace(/^http/, "ws")}/ws/node/deflate`;
  const open = (opts) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
  const next = (ws) => new Promise((resolve) => ws.once("message", (data) => resolve(data.toString())));
  const offering = await open({});
  const plain = await open({ perMessageDeflate: false });
  t.after(() => { offering.close(); plain.close(); });
  assert.equal(offering.extensions, "permessage-deflate");
  assert.equal(plain.extensions, "");
  const data = { rows: Array.from({ length: 40 }, (_, i) => ({ id: i, name: `row ${i}`, tags: ["a", "b"] })) };
  const got = [next(offering), next(plain)];
  await broadcast(gw.base, "ws/node/deflate", data);
  assert.deepEqual(await Promise.all(got), [JSON.stringify(data), JSON.stringify(data)]);
  const answer = next(offering);
  offering.send("!");
  assert.equal(await answer, "!");
});
