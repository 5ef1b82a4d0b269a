// The browser API of issue 18: tokenProvider, on/off, MoleculerHttpClient's timeout, AbortSignal,
// headers and token, and the jittered reconnect default measured with 50 pages.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { once } from "node:events";
import { startGateway, launchBrowser, openPage, waitFor, broadcast, clients } from "./support.mjs";

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** The gateway's REST with its token. */
async function authed(base, route, body) {
  const resp = await fetch(base + route, {
    method: body === undefined ? "GET" : "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer secret" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(resp.ok, `${route}: HTTP ${resp.status}`);
  return body === undefined ? resp.json() : null;
}

test("tokenProvider: a promise asked before every attempt; a refused token is retried", async (t) => {
  const gw = await startGateway(0, ["--token", "secret"]);
  t.after(() => gw.stop());
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  await page.evaluate(() => {
    window.asked = 0;
    window.make("/ws/secure", {
      reconnectDelay: 100,
      // The first token is refused (the upgrade gets 403 and the attempt fails), then a good
      // one: each answer comes later, as a refresh over the network would.
      tokenProvider: () => new Promise((resolve) => {
        const n = window.asked++;
        setTimeout(() => resolve(n === 0 ? "stale" : "secret"), 20);
      }),
    });
    ws.connect();
  });
  await page.evaluate(() => ws.ready(15000));
  assert.equal(await page.evaluate(() => window.asked), 2);
  const counts = await authed(gw.base, "/api/websocket/clients");
  assert.equal(counts["/ws/secure"], 1);
  // A reconnect asks again.
  await gw.stop();
  const again = await startGateway(gw.port, ["--token", "secret"]);
  t.after(() => again.stop());
  await page.waitForFunction(() => window.count("open") >= 2, null, { timeout: 20000 });
  assert.ok(await page.evaluate(() => window.asked) >= 3);
  // A provider that throws or rejects fails the attempt with a clear error (and retries).
  await page.evaluate(() => {
    ws.disconnect();
    window.log = [];
    window.make("/ws/broken", { reconnectDelay: 100, tokenProvider: () => { throw new Error("no refresh"); } });
    ws.connect();
  });
  await page.waitForFunction(() => window.count("error") >= 2);
  const errors = await page.evaluate(() => log.filter((e) => e.type === "error").map((e) => e.data));
  assert.ok(errors.every((e) => /token provider failed/.test(e)), errors.join("\n"));
  assert.ok(page.errors.some((e) => /token provider failed/.test(e)), page.errors.join("\n"));
  await page.evaluate(() => ws.disconnect());
  // A provider that never answers the first time: the attempt times out and the next one asks
  // again (it is not blocked by the first promise).
  await page.evaluate(() => {
    window.hung = 0;
    window.make("/ws/hung", {
      reconnectDelay: 100, connectTimeout: 300,
      tokenProvider: () => (window.hung++ === 0 ? new Promise(() => {}) : "secret"),
    });
    ws.connect();
  });
  await page.evaluate(() => ws.ready(15000));
  assert.equal(await page.evaluate(() => window.hung), 2);
  await page.evaluate(() => ws.disconnect());
});

test("on/off: listeners beside the options' callbacks; an unknown event throws", async (t) => {
  const gw = await startGateway();
  t.after(() => gw.stop());
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  await page.evaluate(() => {
    window.make("/ws/on", {});
    window.heard = [];
    window.one = (m) => heard.push("one:" + m);
    window.two = (m) => heard.push("two:" + m);
    window.states = [];
    ws.on("message", one).on("message", two).on("statechange", (s) => states.push(s));
    ws.connect();
  });
  await page.evaluate(() => ws.ready(10000));
  await broadcast(gw.base, "ws/on", "a");
  await page.waitForFunction(() => window.heard.length === 2);
  await page.evaluate(() => ws.off("message", one));
  await broadcast(gw.base, "ws/on", "b");
  await page.waitForFunction(() => window.count("message") === 2);
  await page.evaluate(() => ws.off("message"));
  await broadcast(gw.base, "ws/on", "c");
  await page.waitForFunction(() => window.count("message") === 3);
  const seen = await page.evaluate(() => ({ heard, states }));
  assert.deepEqual(seen.heard, ['one:"a"', 'two:"a"', 'two:"b"']);
  assert.deepEqual(seen.states, ["connecting", "open"]);
  const thrown = await page.evaluate(() => {
    try { ws.on("mesage", () => {}); return null; } catch (e) { return e.name + ": " + e.message; }
  });
  assert.match(thrown, /^TypeError: .*mesage/);
  await page.evaluate(() => ws.disconnect());
});

test("MoleculerHttpClient: timeout, AbortSignal, per-request headers and an async token", async (t) => {
  const gw = await startGateway(0, ["--token", "secret"]);
  t.after(() => gw.stop());
  // A server of another origin that records requests: /slow never answers.
  const seen = [];
  const hold = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    res.setHeader("Access-Control-Allow-Origin", "*");
    res.setHeader("Access-Control-Allow-Headers", "*");
    if (req.method === "OPTIONS") { res.end(); return; }
    if (req.url.startsWith("/slow")) { hold.push(res); return; }
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ ok: true }));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => { hold.forEach((r) => r.destroy()); server.closeAllConnections(); server.close(); });
  const other = `http://127.0.0.1:${server.address().port}`;
  const page = await openPage(browser, `${gw.base}/test/pages/probe.html`);
  t.after(() => page.close());
  const result = await page.evaluate(async (other) => {
    const out = {};
    const slow = MoleculerHttpClient({ baseUrl: other, timeout: 150 });
    const started = performance.now();
    try { await slow.get("/slow"); } catch (e) { out.timeout = { name: e.name, message: e.message }; }
    out.waited = performance.now() - started;
    // A per-request timeout over the client's.
    try { await slow.get("/slow", null, { timeout: 50 }); } catch (e) { out.perRequest = e.name; }
    // The caller's AbortSignal: aborted while waiting, and already aborted.
    const stop = new AbortController();
    const pending = MoleculerHttpClient({ baseUrl: other }).get("/slow", null, { signal: stop.signal });
    setTimeout(() => stop.abort(new Error("user left")), 50);
    try { await pending; } catch (e) { out.aborted = e.message; }
    try {
      await MoleculerHttpClient({ baseUrl: other }).get("/fast", null, { signal: AbortSignal.abort() });
    } catch (e) { out.early = e.name; }
    // Headers: the client's, then the request's over them.
    await MoleculerHttpClient({ baseUrl: other, headers: { "X-A": "client", "X-B": "client" } })
      .get("/fast", { q: 1 }, { headers: { "X-B": "request" } });
    // The token provider (a promise) gives the bearer token of every call.
    let asked = 0;
    const api = MoleculerHttpClient({ tokenProvider: async () => { asked++; return "secret"; } });
    out.clients = await api.get("/api/websocket/clients");
    try { await MoleculerHttpClient().get("/api/websocket/clients"); } catch (e) { out.without = e.status; }
    out.asked = asked;
    // A provider that throws rejects the call (no exception escapes); one that never answers
    // is cut by the timeout; timeout 0 means none.
    const call = MoleculerHttpClient({ tokenProvider: () => { throw new Error("no refresh"); } })
      .get("/api/websocket/clients");
    try { await call; } catch (e) { out.thrown = e.message; }
    try {
      await MoleculerHttpClient({ tokenProvider: () => new Promise(() => {}), timeout: 100 })
        .get("/api/websocket/clients");
    } catch (e) { out.hung = e.name; }
    out.zero = await MoleculerHttpClient({ baseUrl: other, timeout: 0 }).get("/fast");
    try {
      await MoleculerHttpClient({ tokenProvider: () => new Promise(() => {}) })
        .get("/api/websocket/clients", null, { signal: AbortSignal.abort() });
    } catch (e) { out.preAborted = e.name; }
    return out;
  }, other);
  assert.deepEqual(result.timeout, { name: "TimeoutError", message: "timed out after 150 ms" });
  assert.ok(result.waited >= 140, `gave up after ${result.waited} ms`);
  assert.equal(result.perRequest, "TimeoutError");
  assert.equal(result.aborted, "user left");
  assert.equal(result.early, "AbortError");
  const fast = seen.find((r) => r.method === "GET" && r.url === "/fast?q=1");
  assert.equal(fast.headers["x-a"], "client");
  assert.equal(fast.headers["x-b"], "request");
  assert.deepEqual(result.clients, {});
  assert.equal(result.without, 401);
  assert.equal(result.asked, 1);
  assert.equal(result.thrown, "no refresh");
  assert.equal(result.hung, "TimeoutError");
  assert.deepEqual(result.zero, { ok: true });
  assert.equal(result.preAborted, "AbortError");
});

/** Each page's time (ms since the epoch) of its reopen after the gateway restarted. */
async function reopenTimes(t, opts) {
  const gw = await startGateway();
  const pages = [];
  t.after(async () => { await Promise.all(pages.map((p) => p.close())); });
  const context = await browser.newContext();
  t.after(() => context.close());
  for (let i = 0; i < 50; i++) {
    const page = await context.newPage();
    await page.goto(`${gw.base}/test/pages/probe.html`);
    await page.evaluate((o) => { window.make("/ws/herd", o); ws.connect(); }, opts);
    pages.push(page);
  }
  await waitFor("50 sockets", async () => (await clients(gw.base, "/ws/herd")) === 50, 60000);
  await gw.stop();
  const again = await startGateway(gw.port);
  t.after(() => again.stop());
  await waitFor("50 sockets again", async () => (await clients(again.base, "/ws/herd")) === 50, 60000);
  return Promise.all(pages.map((p) => p.evaluate(() => {
    const open = log.filter((e) => e.type === "open")[1];
    return performance.timeOrigin + open.t;
  })));
}

/** The most reopens in any 100 ms, and the spread from the first to the last. */
function bunching(times) {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i] - sorted[j] > 100) { j++; }
    most = Math.max(most, i - j + 1);
  }
  return { most, spread: sorted[sorted.length - 1] - sorted[0] };
}

test("the default reconnect is jittered: 50 pages do not come back in the same 100 ms", async (t) => {
  // The original's fixed 3 s, for comparison (jitter: false), then the default.
  const fixed = bunching(await reopenTimes(t, { jitter: false, heartbeatInterval: 0 }));
  const jittered = bunching(await reopenTimes(t, { heartbeatInterval: 0 }));
  t.diagnostic(`50 pages after a gateway restart: without jitter ${fixed.most} reopened in the busiest ` +
    `100 ms (all within ${Math.round(fixed.spread)} ms); with the default jitter ${jittered.most} ` +
    `(spread over ${Math.round(jittered.spread)} ms)`);
  // Jitter spreads each delay over 3 to 6 s: no more than a handful in any 100 ms.
  assert.ok(jittered.most <= 10, `${jittered.most} pages reopened within 100 ms`);
  assert.ok(jittered.spread >= 1500, `all 50 reopened within ${jittered.spread} ms`);
  assert.ok(jittered.spread > fixed.spread, `jitter ${jittered.spread} ms vs fixed ${fixed.spread} ms`);
});
