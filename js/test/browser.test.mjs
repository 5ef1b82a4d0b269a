// The browser client in headless Chromium against the reference gateway on 127.0.0.1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startGateway, launchBrowser, openPage, waitFor, broadcast, clients, heartbeatsAnswered,
  post, saveArtifact,
} from "./support.mjs";

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** A gateway plus the probe page; the test's client is made with `make(channel, opts)`. */
async function probe(t, channel, opts) {
  const gw = await startGateway();
  t.after(() => gw.stop());
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  await page.evaluate(([c, o]) => window.make(c, o), [channel, opts]);
  return { gw, page };
}

const count = (page, type) => page.evaluate((ty) => window.count(ty), type);

test("demo page receives a chat message and shows it", async (t) => {
  const gw = await startGateway();
  t.after(() => gw.stop());
  const page = await openPage(browser, `${gw.base}/`);
  t.after(() => page.close());
  await waitFor("demo socket", () => clients(gw.base, "/ws/chat"));
  await page.fill("input[name=user]", "tester");
  await page.fill("input[name=text]", "hello from the browser");
  await page.click("button[type=submit]");
  await page.waitForSelector("#outDiv p", { timeout: 15000 });
  const shown = await page.textContent("#outDiv");
  assert.match(shown, /tester: hello from the browser/);
  await broadcast(gw.base, "ws/chat", { type: "message", user: "server", text: "pushed", time: 0 });
  await page.waitForFunction(() => document.getElementById("outDiv").textContent.includes("server: pushed"));
  assert.equal(await page.textContent("#status"), "connected to ws/chat");
  saveArtifact("demo.png", await page.screenshot());
  assert.deepEqual(page.errors, []);
});

test("the demo page shows the link live: heartbeat round trip, then a reconnect", async (t) => {
  let gw = await startGateway();
  t.after(() => gw.stop());
  const page = await openPage(browser, `${gw.base}/`);
  t.after(() => page.close());
  const link = () => page.textContent("#link");
  // The demo's heartbeat is the original's (6 s): the first round trip shows then.
  await page.waitForFunction(() => /^heartbeat \d+ ms · reconnects 0 · messages 0 · recovered 0$/
    .test(document.getElementById("link").textContent), null, { timeout: 15000 });
  await gw.stop();
  await page.waitForFunction(() => document.getElementById("status").className !== "open");
  gw = await startGateway(gw.port);
  await page.waitForFunction(() => / · reconnects 1 · /.test(document.getElementById("link").textContent),
    null, { timeout: 15000 });
  assert.equal(await page.textContent("#status"), "connected to ws/chat");
  assert.match(await link(), /^heartbeat (–|\d+ ms) · reconnects 1 · messages 0 · recovered 0$/);
  saveArtifact("demo-link.png", await page.screenshot());
});

test("a page written for the original websocket.js works unchanged", async (t) => {
  const gw = await startGateway();
  t.after(() => gw.stop());
  const page = await openPage(browser, `${gw.base}/test/pages/seed.html`);
  t.after(() => page.close());
  await waitFor("seed socket", () => clients(gw.base, "/ws/test"));
  assert.equal(await page.evaluate(() => ws.channel), "/ws/test");
  await broadcast(gw.base, "/ws/test", { type: "hello", text: "from the gateway" });
  await page.waitForSelector("#outDiv p.hello");
  assert.equal(await page.textContent("#outDiv p.hello"), "from the gateway");
  assert.equal(await page.evaluate(() => opened), 1);
  assert.deepEqual(page.errors, []);
});

test("messages arrive as text: numbers, strings with quotes, objects, compressed ones", async (t) => {
  const { gw, page } = await probe(t, "/ws/text", {});
  await page.evaluate(() => ws.connect());
  await waitFor("socket", () => clients(gw.base, "/ws/text"));
  // Over the gateway's compression threshold (256 B): sent compressed (Chromium offers
  // permessage-deflate on every socket).
  const large = { rows: Array.from({ length: 30 }, (_, i) => ({ id: i, text: `row ${i}` })) };
  for (const data of [123, "hi", { a: 1 }, large]) { await broadcast(gw.base, "ws/text", data); }
  await waitFor("4 messages", async () => (await count(page, "message")) === 4);
  const got = await page.evaluate(() => log.filter((e) => e.type === "message").map((e) => e.data));
  assert.deepEqual(got, ["123", "\"hi\"", "{\"a\":1}", JSON.stringify(large)]);
});

test("heartbeat round trips happen at the configured interval", async (t) => {
  const interval = 300;
  const { gw, page } = await probe(t, "/ws/hb", { heartbeatInterval: interval, heartbeatTimeout: 100 });
  await page.evaluate(() => ws.connect());
  await page.evaluate(() => ws.ready(10000));
  const start = Date.now();
  const first = await heartbeatsAnswered(gw.base);
  await waitFor("4 heartbeats", async () => (await heartbeatsAnswered(gw.base)) >= first + 4);
  const elapsed = Date.now() - start;
  // `!` goes out on the first tick (every interval/3) more than `interval` after the last one.
  assert.ok(elapsed >= 3 * interval, `4 heartbeats in ${elapsed} ms: faster than the interval`);
  assert.ok(elapsed <= 4 * (interval + interval / 3) + 1500, `4 heartbeats took ${elapsed} ms`);
  const stats = await page.evaluate(() => ws.stats());
  assert.equal(typeof stats.rtt, "number");
  assert.equal(stats.reconnects, 0);
});

test("a gateway that stops answering ! is detected and the client reconnects in time", async (t) => {
  // The bound below counts the delay as given: no jitter.
  const opts = { heartbeatInterval: 600, heartbeatTimeout: 200, reconnectDelay: 300, jitter: false };
  const { gw, page } = await probe(t, "/ws/lost", opts);
  await page.evaluate(() => ws.connect());
  await page.evaluate(() => ws.ready(10000));
  const t0 = await page.evaluate(async (base) => {
    await fetch(base + "/api/test/heartbeat-replies", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{\"on\":false}",
    });
    return performance.now();
  }, gw.base);
  await page.waitForFunction(() => window.count("reconnect") >= 1, null, { timeout: 15000 });
  const t1 = await page.evaluate(() => log.find((e) => e.type === "reconnect").t);
  const bound = 600 + 200 + 600 / 3 + 300;
  const elapsed = t1 - t0;
  assert.ok(elapsed <= bound + 400, `onreconnect after ${elapsed} ms, bound ${bound} ms`);
  assert.ok(elapsed >= 200 + 300, `onreconnect after ${elapsed} ms: too early`);
  await post(gw.base, "/api/test/heartbeat-replies", { on: true });
  await page.waitForFunction(() => window.count("open") >= 2, null, { timeout: 15000 });
  await waitFor("one socket after recovery", async () => (await clients(gw.base, "/ws/lost")) === 1);
});

test("gateway restart: the client reconnects and receives again", async (t) => {
  const opts = { heartbeatInterval: 1500, heartbeatTimeout: 500, reconnectDelay: 200 };
  const { gw, page } = await probe(t, "/ws/restart", opts);
  await page.evaluate(() => ws.connect());
  await waitFor("socket", () => clients(gw.base, "/ws/restart"));
  await gw.stop();
  await page.waitForFunction(() => window.count("close") >= 1, null, { timeout: 15000 });
  const again = await startGateway(gw.port);
  t.after(() => again.stop());
  await waitFor("reconnected socket", () => clients(again.base, "/ws/restart"));
  await broadcast(again.base, "ws/restart", "after restart");
  await page.waitForFunction(() => window.count("message") >= 1, null, { timeout: 15000 });
  const close = await page.evaluate(() => log.find((e) => e.type === "close").data);
  // gw.stop() sends SIGTERM: 1012 (service restart), as the gateway says since its hardening.
  assert.equal(close.code, 1012);
  assert.equal(close.willReconnect, true);
  assert.ok((await page.evaluate(() => ws.stats())).reconnects >= 1);
});

test("disconnect() closes the socket and cancels every reconnect", async (t) => {
  const { gw, page } = await probe(t, "/ws/bye", { reconnectDelay: 100, heartbeatInterval: 300, heartbeatTimeout: 100 });
  await page.evaluate(() => ws.connect());
  await waitFor("socket", () => clients(gw.base, "/ws/bye"));
  await page.evaluate(() => ws.disconnect());
  await waitFor("socket gone", async () => (await clients(gw.base, "/ws/bye")) === 0);
  // Nothing may happen any more: wait well past the reconnect delay and heartbeat interval.
  await page.evaluate(() => new Promise((r) => setTimeout(r, 1000)));
  assert.equal(await clients(gw.base, "/ws/bye"), 0);
  assert.equal(await count(page, "reconnect"), 0);
  assert.equal(await page.evaluate(() => ws.state()), "stopped");
});

test("two connect() calls, before and after loading, leave one socket", async (t) => {
  const gw = await startGateway();
  t.after(() => gw.stop());
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  await page.evaluate(() => { window.make("/ws/once", {}); ws.connect(); ws.connect(); });
  await page.evaluate(() => ws.ready(10000));
  await page.evaluate(() => ws.connect());
  await broadcast(gw.base, "ws/once", "marker");
  await page.waitForFunction(() => window.count("message") >= 1);
  assert.equal(await clients(gw.base, "/ws/once"), 1);
  assert.equal(await count(page, "open"), 1);
});

test("REST: a call round trip, a 404 and validation errors reject with details", async (t) => {
  const { gw, page } = await probe(t, "/ws/chat", {});
  const result = await page.evaluate(async () => {
    const http = MoleculerHttpClient();
    const sent = await http.post("/api/chat/send", { user: "ann", text: "hi" });
    const errors = [];
    // Without a body too, a POST is JSON: the gateway validates it instead of answering 415.
    const calls = [
      () => http.get("/api/nope", { a: 1 }), () => http.post("/api/chat/send", {}), () => http.post("/api/chat/send"),
    ];
    for (const call of calls) {
      try { await call(); errors.push(null); } catch (e) {
        errors.push({ status: e.status, name: e.name, code: e.code, type: e.type, message: e.message, isError: e instanceof Error });
      }
    }
    return { sent, errors };
  });
  assert.equal(result.sent.type, "message");
  assert.equal(result.sent.text, "hi");
  assert.deepEqual(result.errors[0], {
    status: 404, name: "HttpError", code: 404, type: null, message: "Not Found: /api/nope", isError: true,
  });
  assert.equal(result.errors[1].status, 422);
  assert.equal(result.errors[1].name, "ValidationError");
  assert.equal(result.errors[1].type, "VALIDATION_ERROR");
  assert.equal(result.errors[1].code, 422);
  assert.deepEqual(result.errors[2], result.errors[1]);
  assert.equal(await clients(gw.base, "/ws/chat"), 0);
});

test("the ES module entry works like the classic script", async (t) => {
  const gw = await startGateway();
  t.after(() => gw.stop());
  const page = await openPage(browser, `${gw.base}/test/pages/module.html`);
  t.after(() => page.close());
  await waitFor("module socket", () => clients(gw.base, "/ws/module"));
  await broadcast(gw.base, "/ws/module", { via: "module" });
  await page.waitForFunction(() => window.received.length === 1);
  assert.deepEqual(await page.evaluate(() => window.received), ["{\"via\":\"module\"}"]);
  assert.deepEqual(page.errors, []);
});

test("page becomes visible: the link is probed at once instead of at the next tick", async (t) => {
  // A 60 s interval would take a minute to notice the silent gateway; the probe takes ~timeout.
  const opts = { heartbeatInterval: 60000, heartbeatTimeout: 300, reconnectDelay: 100 };
  const { gw, page } = await probe(t, "/ws/visible", opts);
  await page.evaluate(() => ws.connect());
  await page.evaluate(() => ws.ready(10000));
  await post(gw.base, "/api/test/heartbeat-replies", { on: false });
  // The probe's `!` must come at least `timeout` after the last reply (here: the open).
  await page.evaluate(() => new Promise((r) => setTimeout(r, 400)));
  const t0 = await page.evaluate(() => {
    document.dispatchEvent(new Event("visibilitychange"));
    return performance.now();
  });
  await page.waitForFunction(() => window.count("reconnect") >= 1, null, { timeout: 15000 });
  const t1 = await page.evaluate(() => log.find((e) => e.type === "reconnect").t);
  assert.ok(t1 - t0 <= 300 + 100 + 1000, `reconnect ${t1 - t0} ms after the probe`);
});

test("network back online while waiting: reconnects at once instead of after the delay", async (t) => {
  const opts = { heartbeatInterval: 0, reconnectDelay: 60000 };
  const { gw, page } = await probe(t, "/ws/online", opts);
  await page.evaluate(() => ws.connect());
  await waitFor("socket", () => clients(gw.base, "/ws/online"));
  await gw.stop();
  await page.waitForFunction(() => ws.state() === "waiting", null, { timeout: 15000 });
  const again = await startGateway(gw.port);
  t.after(() => again.stop());
  await page.evaluate(() => window.dispatchEvent(new Event("online")));
  await waitFor("socket after online", () => clients(again.base, "/ws/online"), 5000);
});

test("a heartbeatTimeout the original could never reach still connects (clamped)", async (t) => {
  const { gw, page } = await probe(t, "/ws/clamp", { heartbeatInterval: 900, heartbeatTimeout: 5000 });
  await page.evaluate(() => ws.connect());
  await page.evaluate(() => ws.ready(10000));
  assert.equal(await clients(gw.base, "/ws/clamp"), 1);
});
