// Message recovery in Chromium (README "Message recovery"): the browser client with
// `recover: true` is cut by the fault proxy for 2 s while 100 messages/s are broadcast; it
// receives every message exactly once, in order, and `onopen` reports `recovered: true`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startProxy, launchBrowser, openPage, waitFor, broadcast } from "./support.mjs";

let browser, gw;
before(async () => { browser = await launchBrowser(); gw = await startGateway(); });
after(async () => { await browser?.close(); await gw?.stop(); });

const TOTAL = 400;
const PATH = "/ws/recovery";

/** Broadcasts 1..TOTAL at 100 messages per second, in order. */
async function broadcaster() {
  const start = Date.now();
  for (let n = 1; n <= TOTAL; n++) {
    await broadcast(gw.base, PATH, n);
    const next = start + n * 10 - Date.now();
    if (next > 0) { await new Promise((r) => setTimeout(r, next)); }
  }
}

test("a 2 s cut is recovered: every message once, in order, recovered: true", async (t) => {
  const proxy = await startProxy(new URL(gw.base).host);
  t.after(() => proxy.stop());
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  await page.evaluate((url) => {
    window.rec = { opens: [], msgs: [], resyncs: 0 };
    window.rws = MoleculerWebsocket(url, (m) => rec.msgs.push(Number(m)), {
      recover: true,
      reconnectDelay: 2000,
      onopen: (evt, info) => rec.opens.push(info),
      onresync: () => { rec.resyncs += 1; },
    });
    rws.connect();
  }, `ws://${proxy.addr}${PATH}`);
  const rec = () => page.evaluate(() => window.rec);
  await waitFor("first open", async () => (await rec()).opens.length === 1);
  const sending = broadcaster();
  await waitFor("50 messages", async () => (await rec()).msgs.length >= 50);
  await proxy.set("cut");
  await waitFor("reopened", async () => (await rec()).opens.length === 2);
  await sending;
  await waitFor("the last message", async () => (await rec()).msgs.at(-1) === TOTAL);
  const r = await rec();
  assert.deepEqual(r.opens[0], { recovered: false, replayed: 0 });
  assert.equal(r.opens[1].recovered, true);
  assert.ok(r.opens[1].replayed >= 150, `replayed ${r.opens[1].replayed}`);
  assert.equal(r.resyncs, 0);
  assert.deepEqual(r.msgs, Array.from({ length: TOTAL }, (_, i) => i + 1));
  await page.evaluate(() => rws.disconnect());
});

test("a gateway restart is reported: recovered: false and onresync", async (t) => {
  const own = await startGateway();
  t.after(() => own.stop());
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  const url = own.base.replace(/^http/, "ws") + PATH;
  await page.evaluate((u) => {
    window.rec = { opens: [], msgs: [], resyncs: 0 };
    window.rws = MoleculerWebsocket(u, (m) => rec.msgs.push(Number(m)), {
      recover: true,
      reconnectDelay: 100,
      onopen: (evt, info) => rec.opens.push(info),
      onresync: () => { rec.resyncs += 1; },
    });
    rws.connect();
  }, url);
  const rec = () => page.evaluate(() => window.rec);
  await waitFor("first open", async () => (await rec()).opens.length === 1);
  await broadcast(own.base, PATH, 1);
  await waitFor("message 1", async () => (await rec()).msgs.length === 1);
  await own.stop();
  const again = await startGateway(own.port);
  t.after(() => again.stop());
  await waitFor("reopened", async () => (await rec()).opens.length === 2);
  await waitFor("resync", async () => (await rec()).resyncs === 1);
  await broadcast(again.base, PATH, 2);
  await waitFor("message 2", async () => (await rec()).msgs.length === 2);
  const r = await rec();
  assert.deepEqual(r.opens[1], { recovered: false, replayed: 0 });
  assert.deepEqual(r.msgs, [1, 2]);
  await page.evaluate(() => rws.disconnect());
});
