// Event streams in Chromium: a bare `EventSource` (no script of ours) on a path with
// `?recover=1` is cut by the fault proxy and kept away for at least 2 s while 100 messages/s
// are broadcast; the browser reconnects by itself with `Last-Event-ID`, and the page receives
// every message exactly once, in order.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startProxy, launchBrowser, openPage, waitFor, broadcast } from "./support.mjs";

let browser, gw;
before(async () => { browser = await launchBrowser(); gw = await startGateway(); });
after(async () => { await browser?.close(); await gw?.stop(); });

const TOTAL = 400;

/** Broadcasts 1..TOTAL to `path` at 100 messages per second, in order. */
async function broadcaster(path) {
  const start = Date.now();
  for (let n = 1; n <= TOTAL; n++) {
    await broadcast(gw.base, path, n);
    const next = start + n * 10 - Date.now();
    if (next > 0) { await new Promise((r) => setTimeout(r, next)); }
  }
}

test("a bare EventSource recovers a 2 s cut with no loss", async (t) => {
  const PATH = "/ws/bare";
  const proxy = await startProxy(new URL(gw.base).host);
  t.after(() => proxy.stop());
  // The page comes through the proxy too: the stream is same-origin, as a deployed page's is.
  const page = await openPage(browser, `http://${proxy.addr}/test/pages/probe.html`);
  t.after(() => page.close());
  await page.evaluate((path) => {
    window.rec = { msgs: [], ids: [], resets: [], recovered: [], errors: 0, opens: 0 };
    const es = new EventSource(`${path}?recover=1`);
    es.onopen = () => { rec.opens += 1; };
    es.onmessage = (e) => { rec.msgs.push(Number(e.data)); rec.ids.push(e.lastEventId); };
    es.addEventListener("reset", (e) => rec.resets.push(JSON.parse(e.data)));
    es.addEventListener("recovered", (e) => rec.recovered.push(JSON.parse(e.data)));
    es.onerror = () => { rec.errors += 1; };
    window.es = es;
  }, PATH);
  const rec = () => page.evaluate(() => window.rec);
  await waitFor("the first status", async () => (await rec()).resets.length === 1);
  const sending = broadcaster(PATH);
  await waitFor("50 messages", async () => (await rec()).msgs.length >= 50);
  // Cut, and keep the gateway unreachable for 2 s (the browser's own retries fail meanwhile).
  await proxy.set("down");
  await proxy.set("cut");
  const cutAt = Date.now();
  await waitFor("the browser saw the loss", async () => (await rec()).errors >= 1);
  await new Promise((r) => setTimeout(r, 2000 - (Date.now() - cutAt)));
  await proxy.set("pass");
  await waitFor("recovered", async () => (await rec()).recovered.length === 1);
  await sending;
  await waitFor("the last message", async () => (await rec()).msgs.at(-1) === TOTAL, 30000);
  const r = await rec();
  assert.equal(r.resets.length, 1, "only the first connection is a reset");
  assert.equal(r.resets[0].seq, 0);
  assert.ok(r.recovered[0].replayed >= 150, `replayed ${r.recovered[0].replayed}`);
  assert.deepEqual(r.msgs, Array.from({ length: TOTAL }, (_, i) => i + 1));
  assert.equal(r.ids.at(-1), `${r.resets[0].epoch}:${TOTAL}`);
  assert.ok(r.opens >= 2, `opens ${r.opens}`);
  await page.evaluate(() => window.es.close());
});
