// Event streams in Chromium: a bare `EventSource` (no script of ours) on a path with
// `?recover=1` is cut by the fault proxy and kept away for at least 2 s while 100 messages/s
// are broadcast; the browser reconnects by itself with `Last-Event-ID`, and the page receives
// every message exactly once, in order. Then the drop-in's `transport` option: "sse" with
// recovery across a cut and its heartbeat on the keep-alives, "auto" behind a proxy that
// refuses upgrades. Pages come through the proxy: their streams are same-origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startProxy, launchBrowser, openPage, waitFor, broadcast } from "./support.mjs";

let browser, gw;
// Keep-alives every 200 ms: below the clients' 600 ms heartbeat interval here.
before(async () => {
  browser = await launchBrowser();
  gw = await startGateway(0, ["--event-stream-keep-alive", "200ms"]);
});
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

/** A probe page served through a fresh fault proxy (in `mode`), so that its streams are
 * same-origin; resolves to { proxy, page }. */
async function throughProxy(t, mode = "pass") {
  const proxy = await startProxy(new URL(gw.base).host);
  t.after(() => proxy.stop());
  const page = await openPage(browser, `http://${proxy.addr}/test/pages/probe.html`);
  t.after(() => page.close());
  await proxy.set(mode);
  return { proxy, page };
}

async function metric(name) {
  const text = await (await fetch(`${gw.base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

test("transport: 'sse' receives every broadcast, keeps its heartbeat on keep-alives and recovers a cut", async (t) => {
  const PATH = "/ws/drop-in-sse";
  const { proxy, page } = await throughProxy(t);
  const streams = await metric("moleculer_ws_event_streams_opened_total");
  await page.evaluate(([url, o]) => {
    window.rec = { msgs: [], opens: [], resyncs: 0 };
    window.rws = MoleculerWebsocket(url, (m) => rec.msgs.push(Number(m)), {
      ...o,
      onopen: (evt, info) => rec.opens.push(info),
      onresync: () => { rec.resyncs += 1; },
    });
    rws.connect();
  }, [`ws://${proxy.addr}${PATH}`, {
    transport: "sse", recover: true, reconnectDelay: 300, jitter: false,
    heartbeatInterval: 600, heartbeatTimeout: 200,
  }]);
  const rec = () => page.evaluate(() => window.rec);
  await waitFor("open", async () => (await rec()).opens.length === 1);
  assert.equal(await metric("moleculer_ws_event_streams_opened_total"), streams + 1);
  const sending = broadcaster(PATH);
  await waitFor("50 messages", async () => (await rec()).msgs.length >= 50);
  await proxy.set("cut");
  await waitFor("reopened", async () => (await rec()).opens.length === 2);
  await sending;
  await waitFor("the last message", async () => (await rec()).msgs.at(-1) === TOTAL, 30000);
  const r = await rec();
  assert.deepEqual(r.opens[0], { recovered: false, replayed: 0 });
  assert.equal(r.opens[1].recovered, true);
  assert.equal(r.resyncs, 0);
  assert.deepEqual(r.msgs, Array.from({ length: TOTAL }, (_, i) => i + 1));
  // Quiet for three heartbeat intervals: the keep-alives hold the link (a loss would reopen).
  await new Promise((resolve) => setTimeout(resolve, 1800));
  assert.equal((await rec()).opens.length, 2);
  assert.equal(await page.evaluate(() => rws.state()), "open");
  await page.evaluate(() => rws.disconnect());
});

test("transport: 'auto' behind a proxy that refuses upgrades receives every broadcast", async (t) => {
  const PATH = "/ws/drop-in-auto";
  const { proxy, page } = await throughProxy(t, "refuse-upgrades");
  const [sockets, streams] = [
    await metric("moleculer_ws_sockets_opened_total"),
    await metric("moleculer_ws_event_streams_opened_total"),
  ];
  await page.evaluate((url) => {
    window.rec = { msgs: [], opens: 0 };
    window.rws = MoleculerWebsocket(url, (m) => rec.msgs.push(Number(m)), {
      transport: "auto",
      reconnectDelay: 300,
      onopen: () => { rec.opens += 1; },
    });
    rws.connect();
  }, `ws://${proxy.addr}${PATH}`);
  const rec = () => page.evaluate(() => window.rec);
  await waitFor("open on the stream", async () => (await rec()).opens === 1);
  await broadcaster(PATH);
  await waitFor("the last message", async () => (await rec()).msgs.at(-1) === TOTAL, 30000);
  const r = await rec();
  assert.deepEqual(r.msgs, Array.from({ length: TOTAL }, (_, i) => i + 1));
  assert.equal(await metric("moleculer_ws_sockets_opened_total"), sockets, "no upgrade got through");
  assert.equal(await metric("moleculer_ws_event_streams_opened_total"), streams + 1);
  await page.evaluate(() => rws.disconnect());
});

test("transport: a wrong name is a clear error, at connect()", async (t) => {
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  await page.evaluate(() => {
    window.errors = [];
    window.bad = MoleculerWebsocket("ws://127.0.0.1:9/ws", () => {}, {
      transport: "long-polling",
      onerror: (e) => errors.push(`${e.name}: ${e.message}`),
    });
    bad.connect();
  });
  await waitFor("the error", () => page.evaluate(() => window.errors.length === 1));
  assert.deepEqual(await page.evaluate(() => window.errors),
    ['TypeError: transport must be "websocket", "sse" or "auto"']);
  assert.equal(await page.evaluate(() => bad.state()), "stopped");
  page.errors.length = 0; // the console error is the expected one
});
