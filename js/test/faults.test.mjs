// The client fault matrix for the browser client: Chromium's MoleculerWebsocket through the
// conformance harness's fault proxy, the same faults and bounds as the Rust client's matrix
// (tests/src/clients.rs). Results are printed in the harness's table form and saved to
// test-artifacts/browser-faults.json.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startGateway, startProxy, launchBrowser, openPage, waitFor, broadcast, clients, post,
  saveArtifact, table,
} from "./support.mjs";

const INTERVAL = 600, TIMEOUT = 200, DELAY = 300, SLACK = 400;
const BOUND = INTERVAL + TIMEOUT + INTERVAL / 3;
const OPTS = { heartbeatInterval: INTERVAL, heartbeatTimeout: TIMEOUT, reconnectDelay: DELAY, connectTimeout: 1000 };

let browser, gw;
const rows = [];
before(async () => { browser = await launchBrowser(); gw = await startGateway(); });
after(async () => {
  await browser?.close();
  await gw?.stop();
  if (rows.length) {
    console.log(table(rows));
    saveArtifact("browser-faults.json", JSON.stringify(rows, null, 2));
  }
});

/** A page with a client at /ws/faults/<name> through a fresh proxy, connected. */
async function setup(t, name, initial = "pass") {
  const proxy = await startProxy(new URL(gw.base).host);
  t.after(() => proxy.stop());
  await proxy.set(initial);
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  const path = `/ws/faults/${name}`;
  await page.evaluate(([url, o]) => { window.make(url, o); ws.connect(); }, [`ws://${proxy.addr}${path}`, OPTS]);
  await page.evaluate(() => ws.ready(10000));
  await waitFor("one socket", async () => (await clients(gw.base, path)) === 1);
  return { proxy, page, path };
}

const pageNow = (page) => page.evaluate(() => performance.now());
const firstAfter = (page, type, t) =>
  page.evaluate(([ty, since]) => (log.find((e) => e.type === ty && e.t >= since) || {}).t, [type, t]);

async function waitEvent(page, type, since) {
  await page.waitForFunction(([ty, s]) => log.some((e) => e.type === ty && e.t >= s), [type, since], { timeout: 15000 });
  return firstAfter(page, type, since);
}

async function deliver(page, path, data) {
  const before = await page.evaluate(() => window.count("message"));
  await broadcast(gw.base, path, data);
  await page.waitForFunction((n) => window.count("message") > n, before, { timeout: 15000 });
  const last = await page.evaluate(() => log.filter((e) => e.type === "message").pop().data);
  assert.equal(last, JSON.stringify(data));
}

/** After a fault at page time t0: noticed within `bound`, retried after the delay, recovered. */
async function recover(page, path, t0, bound, heal) {
  const closed = await waitEvent(page, "close", t0);
  const detected = closed - t0;
  assert.ok(detected <= bound, `loss noticed after ${detected.toFixed(0)} ms, bound ${bound} ms`);
  if (heal) { await heal(); }
  const retried = await waitEvent(page, "reconnect", closed);
  const waited = retried - closed;
  assert.ok(waited >= DELAY - 20 && waited <= DELAY + SLACK, `retried after ${waited.toFixed(0)} ms, delay ${DELAY}`);
  await waitEvent(page, "open", retried);
  await waitFor("one socket after recovery", async () => (await clients(gw.base, path)) === 1);
  await deliver(page, path, "after recovery");
  return `noticed in ${detected.toFixed(0)} ms, retried after ${waited.toFixed(0)} ms, recovered`;
}

/** Exactly one socket at the gateway; after disconnect() none, and no more attempts. */
async function finish(page, path) {
  assert.equal(await clients(gw.base, path), 1, "one client must hold exactly one socket");
  await page.evaluate(() => ws.disconnect());
  await waitFor("no socket after disconnect", async () => (await clients(gw.base, path)) === 0);
  assert.equal(await page.evaluate(() => ws.state()), "stopped");
}

function record(name, expectation, detail) {
  rows.push({ case: `browser.${name}`, expectation, result: "pass", detail });
}

async function untilRtt(page) {
  await page.waitForFunction(() => ws.stats().rtt !== null, null, { timeout: 15000 });
}

test("pass: messages delivered, one socket", async (t) => {
  const { page, path } = await setup(t, "pass");
  await deliver(page, path, { fault: "none" });
  await finish(page, path);
  record("pass", "messages delivered; one socket", "delivered");
});

test("blackhole: loss noticed within interval + timeout + interval/3", async (t) => {
  const { proxy, page, path } = await setup(t, "blackhole");
  await untilRtt(page);
  const t0 = await pageNow(page);
  await proxy.set("blackhole");
  const d = await recover(page, path, t0, BOUND + SLACK, () => proxy.set("pass"));
  await finish(page, path);
  record("blackhole", `loss noticed within ${BOUND + SLACK} ms, fixed delay, recovery`, d);
});

test("delay: 50 ms each way raises no false alarm", async (t) => {
  const { proxy, page, path } = await setup(t, "delay");
  await proxy.set("delay:50");
  const t0 = await pageNow(page);
  // Three heartbeat periods under latency.
  await page.evaluate((ms) => new Promise((r) => setTimeout(r, ms)), 3 * (INTERVAL + INTERVAL / 3));
  assert.equal(await firstAfter(page, "close", t0), undefined, "false alarm under 50 ms latency");
  const rtt = (await page.evaluate(() => ws.stats())).rtt;
  assert.ok(rtt >= 100, `RTT ${rtt} ms is below the injected 100 ms`);
  await deliver(page, path, "delayed");
  await finish(page, path);
  record("delay", "50 ms each way: no false alarm, RTT >= 100 ms, delivery", `RTT ${rtt} ms, delivered`);
});

test("cut: a reset is noticed at once and the client recovers", async (t) => {
  const { proxy, page, path } = await setup(t, "cut");
  const t0 = await pageNow(page);
  await proxy.set("cut");
  const d = await recover(page, path, t0, SLACK);
  await finish(page, path);
  record("cut", "RST noticed at once, reconnect after the delay, recovery", d);
});

test("slice: bytes one at a time keep frames intact", async (t) => {
  const { page, path } = await setup(t, "slice", "slice");
  await untilRtt(page);
  await deliver(page, path, { big: "s".repeat(20 * 1024) });
  await finish(page, path);
  record("slice", "bytes one at a time: handshake, heartbeat and a 20 KB message intact", "delivered byte by byte");
});

test("silent gateway: `!` unanswered is noticed within the bound", async (t) => {
  const { page, path } = await setup(t, "silent");
  await untilRtt(page);
  const t0 = await pageNow(page);
  await post(gw.base, "/api/test/heartbeat-replies", { on: false });
  let d;
  try {
    d = await recover(page, path, t0, BOUND + SLACK, () => post(gw.base, "/api/test/heartbeat-replies", { on: true }));
  } finally {
    await post(gw.base, "/api/test/heartbeat-replies", { on: true });
  }
  await finish(page, path);
  record("silent-gateway", `gateway stops answering \`!\`: noticed within ${BOUND + SLACK} ms, recovery`, d);
});
