// One socket for all tabs (`shared: true`): several pages of one browser context share one
// socket on the gateway; each tab receives every broadcast once; the leader's tab closing,
// disconnecting or freezing hands the socket to another tab, and with `recover` nothing is lost.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, launchBrowser, waitFor, broadcast, clients } from "./support.mjs";

let browser, gw;
before(async () => { browser = await launchBrowser(); gw = await startGateway(); });
after(async () => { await browser?.close(); await gw?.stop(); });

/** `n` tabs of one new browser context, each with a shared channel `path` started. */
async function tabs(t, n, path, opts = {}) {
  const context = await browser.newContext();
  t.after(() => context.close());
  const pages = [];
  for (let i = 0; i < n; i++) {
    const page = await context.newPage();
    page.errors = [];
    page.on("pageerror", (e) => page.errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") { page.errors.push(m.text()); } });
    await page.goto(`${gw.base}/test/pages/shared.html`);
    await page.evaluate(([p, o]) => window.start(p, o), [path, opts]);
    pages.push(page);
  }
  return { context, pages };
}

const rec = (page) => page.evaluate(() => window.rec);
const state = (page) => page.evaluate(() => ws.state());
const leaders = async (pages) => {
  const flags = await Promise.all(pages.map((p) => p.evaluate(() => ws.isLeader())));
  return pages.filter((_, i) => flags[i]);
};

async function allOpen(pages) {
  await waitFor("every tab open", async () =>
    (await Promise.all(pages.map(state))).every((s) => s === "open"));
}

async function sendNumbers(path, from, to, perSecond = 0) {
  const start = Date.now();
  for (let n = from; n <= to; n++) {
    await broadcast(gw.base, path, n);
    if (perSecond) {
      const next = start + (n - from + 1) * (1000 / perSecond) - Date.now();
      if (next > 0) { await new Promise((r) => setTimeout(r, next)); }
    }
  }
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("5 tabs share ONE socket; every tab receives every broadcast exactly once", async (t) => {
  const path = "/ws/shared-five";
  const { pages } = await tabs(t, 5, path);
  await allOpen(pages);
  assert.equal(await clients(gw.base, path), 1);
  assert.equal((await leaders(pages)).length, 1);
  await sendNumbers(path, 1, 20);
  for (const page of pages) {
    await waitFor("20 messages", async () => (await rec(page)).msgs.length >= 20);
  }
  for (const page of pages) {
    const r = await rec(page);
    assert.deepEqual(r.msgs, range(1, 20));
    assert.equal(r.opens.length, 1);
    assert.deepEqual(r.states, ["connecting", "open"]);
    assert.equal((await page.evaluate(() => ws.stats())).messagesReceived, 20);
    assert.deepEqual(page.errors, []);
  }
  assert.equal(await clients(gw.base, path), 1);
});

test("the leader's tab closes: one socket again within the heartbeat interval, the others keep receiving", async (t) => {
  const path = "/ws/shared-close";
  const { pages } = await tabs(t, 3, path);
  await allOpen(pages);
  const [leader] = await leaders(pages);
  const rest = pages.filter((p) => p !== leader);
  const closed = Date.now();
  await leader.close();
  await waitFor("a new leader", async () => (await leaders(rest)).length === 1);
  await waitFor("its socket", async () => (await clients(gw.base, path)) === 1);
  const handOver = Date.now() - closed;
  // The lock passes when the tab goes: no timeout is involved. The bound is the issue's
  // (one heartbeat interval, 6000 ms by default), far above what the mechanism takes.
  assert.ok(handOver < 6000, `hand-over took ${handOver} ms`);
  t.diagnostic(`hand-over: ${handOver} ms`);
  await sendNumbers(path, 1, 10);
  for (const page of rest) {
    await waitFor("10 messages", async () => (await rec(page)).msgs.length >= 10);
    assert.deepEqual((await rec(page)).msgs, range(1, 10));
  }
  assert.equal(await clients(gw.base, path), 1);
});

test("the leader's tab crashes: another tab takes over and receives", async (t) => {
  const path = "/ws/shared-crash";
  const { context, pages } = await tabs(t, 2, path, { recover: true });
  await allOpen(pages);
  const [leader] = await leaders(pages);
  const other = pages.find((p) => p !== leader);
  await sendNumbers(path, 1, 2);
  await waitFor("received", async () => (await rec(other)).msgs.length === 2);
  const cdp = await context.newCDPSession(leader);
  const crashed = new Promise((resolve) => leader.once("crash", resolve));
  cdp.send("Page.crash").catch(() => {});
  await crashed;
  await waitFor("the other tab leads", () => other.evaluate(() => ws.isLeader()));
  await waitFor("it is open", async () => (await state(other)) === "open");
  await sendNumbers(path, 3, 4);
  await waitFor("received", async () => (await rec(other)).msgs.length === 4);
  assert.deepEqual((await rec(other)).msgs, range(1, 4));
  await waitFor("one socket", async () => (await clients(gw.base, path)) === 1);
});

test("recover: true, 50 broadcasts/s during the hand-over: zero loss in every remaining tab", async (t) => {
  const path = "/ws/shared-recover";
  const { pages } = await tabs(t, 4, path, { recover: true });
  await allOpen(pages);
  const [leader] = await leaders(pages);
  const rest = pages.filter((p) => p !== leader);
  const sending = sendNumbers(path, 1, 250, 50);
  await waitFor("50 messages", async () => (await rec(rest[0])).msgs.length >= 50);
  await leader.close();
  await sending;
  for (const page of rest) {
    await waitFor("the last message", async () => (await rec(page)).msgs.at(-1) === 250);
    const r = await rec(page);
    assert.deepEqual(r.msgs, range(1, 250));
    assert.equal(r.resyncs, 0);
    assert.deepEqual(page.errors, []);
  }
  assert.equal((await leaders(rest)).length, 1);
  assert.equal(await clients(gw.base, path), 1);
});

test("recover: true, a gateway restart: every tab gets onresync once and goes on receiving", async (t) => {
  // Its own gateway, restarted on the same port: the history is gone (a new epoch).
  const own = await startGateway();
  t.after(() => own.stop());
  const path = "/ws/shared-restart";
  const url = own.base.replace(/^http/, "ws") + path;
  const { pages } = await tabs(t, 3, url, { recover: true, reconnectDelay: 100 });
  await allOpen(pages);
  await broadcast(own.base, path, 1);
  for (const page of pages) { await waitFor("message 1", async () => (await rec(page)).msgs.length === 1); }
  await own.stop();
  const again = await startGateway(own.port);
  t.after(() => again.stop());
  for (const page of pages) { await waitFor("resync", async () => (await rec(page)).resyncs === 1); }
  await broadcast(again.base, path, 2);
  await broadcast(again.base, path, 3);
  for (const page of pages) {
    await waitFor("messages 2 and 3", async () => (await rec(page)).msgs.length === 3);
    const r = await rec(page);
    assert.deepEqual(r.msgs, [1, 2, 3]);
    assert.equal(r.resyncs, 1);
  }
  assert.equal(await clients(again.base, path), 1);
});

test("a follower's disconnect leaves the others connected; the last one out closes the socket", async (t) => {
  const path = "/ws/shared-leave";
  const { pages } = await tabs(t, 3, path);
  await allOpen(pages);
  const [leader] = await leaders(pages);
  const [follower, other] = pages.filter((p) => p !== leader);
  await follower.evaluate(() => ws.disconnect());
  assert.equal(await state(follower), "stopped");
  assert.equal(await clients(gw.base, path), 1);
  await sendNumbers(path, 1, 3);
  await waitFor("the leader receives", async () => (await rec(leader)).msgs.length === 3);
  await waitFor("the other follower receives", async () => (await rec(other)).msgs.length === 3);
  // The leader leaves: the remaining tab takes over.
  await leader.evaluate(() => ws.disconnect());
  assert.equal(await state(leader), "stopped");
  await waitFor("the other tab leads", () => other.evaluate(() => ws.isLeader()));
  await waitFor("its socket", async () => (await clients(gw.base, path)) === 1);
  await other.evaluate(() => ws.disconnect());
  await waitFor("no socket", async () => (await clients(gw.base, path)) === 0);
  assert.deepEqual((await rec(follower)).msgs, []);
  assert.deepEqual((await rec(leader)).closes.at(-1), { code: 1000, reason: "", willReconnect: false });
});

test("a leader whose page is frozen hands over at once; resumed, it follows", async (t) => {
  // The browser dispatches `freeze` on the document before it freezes a page (headless
  // Chromium's CDP freeze does not, so the test dispatches it), `resume` when it thaws.
  const path = "/ws/shared-freeze";
  const { pages } = await tabs(t, 2, path);
  await allOpen(pages);
  const [leader] = await leaders(pages);
  const other = pages.find((p) => p !== leader);
  await leader.evaluate(() => document.dispatchEvent(new Event("freeze")));
  assert.equal(await leader.evaluate(() => ws.isLeader()), false);
  await waitFor("the other tab leads", () => other.evaluate(() => ws.isLeader()));
  await waitFor("it is open", async () => (await state(other)) === "open");
  await waitFor("one socket", async () => (await clients(gw.base, path)) === 1);
  await leader.evaluate(() => document.dispatchEvent(new Event("resume")));
  await sendNumbers(path, 1, 3);
  await waitFor("the resumed tab follows", async () => (await rec(leader)).msgs.at(-1) === 3);
  assert.deepEqual((await rec(other)).msgs, range(1, 3));
  assert.equal(await clients(gw.base, path), 1);
});

test("a frozen tab next in line steps out of the line; resumed, it follows", async (t) => {
  const path = "/ws/shared-frozen-follower";
  const { pages } = await tabs(t, 3, path, { recover: true });
  await allOpen(pages);
  const [leader] = await leaders(pages);
  const [first, second] = pages.filter((p) => p !== leader);
  await first.evaluate(() => document.dispatchEvent(new Event("freeze")));
  await leader.close();
  await waitFor("the other tab leads", () => second.evaluate(() => ws.isLeader()));
  await waitFor("it is open", async () => (await state(second)) === "open");
  assert.equal(await first.evaluate(() => ws.isLeader()), false);
  await sendNumbers(path, 1, 2);
  await waitFor("received", async () => (await rec(second)).msgs.length === 2);
  await first.evaluate(() => document.dispatchEvent(new Event("resume")));
  await sendNumbers(path, 3, 3);
  await waitFor("the resumed tab follows", async () => (await rec(first)).msgs.at(-1) === 3);
  // (The event alone does not stop its scripts, so it kept receiving: nothing missed.)
  const r = await rec(first);
  assert.deepEqual(r.msgs, [1, 2, 3]);
  assert.equal(r.resyncs, 0);
  assert.equal(await clients(gw.base, path), 1);
});

test("a leader that stops posting (hung, or frozen without the event) is replaced; back, it follows", async (t) => {
  // The leader posts every third of the heartbeat interval; a visible tab that hears nothing
  // for two thirds of it takes the lock. The leader's page is blocked for 4 s here.
  const path = "/ws/shared-hung";
  const { pages } = await tabs(t, 2, path, { heartbeatInterval: 1500, recover: true });
  await allOpen(pages);
  const [leader] = await leaders(pages);
  const other = pages.find((p) => p !== leader);
  await sendNumbers(path, 1, 2);
  await waitFor("received", async () => (await rec(other)).msgs.length === 2);
  const blocked = leader.evaluate(() => { const end = Date.now() + 4000; while (Date.now() < end); });
  const since = Date.now();
  await waitFor("the other tab leads", () => other.evaluate(() => ws.isLeader()));
  await waitFor("it is open", async () => (await state(other)) === "open");
  t.diagnostic(`hand-over from a silent leader: ${Date.now() - since} ms`);
  await sendNumbers(path, 3, 5);
  await blocked;
  // Unblocked, it finds the lock taken, closes its socket and follows.
  await waitFor("one socket", async () => (await clients(gw.base, path)) === 1);
  assert.equal(await leader.evaluate(() => ws.isLeader()), false);
  await sendNumbers(path, 6, 7);
  await waitFor("the old leader follows", async () => (await rec(leader)).msgs.at(-1) === 7);
  await waitFor("all in the new leader", async () => (await rec(other)).msgs.at(-1) === 7);
  assert.deepEqual((await rec(other)).msgs, range(1, 7));
  assert.equal((await rec(other)).resyncs, 0);
  // What passed it while it was blocked (its socket closes when it finds the lock taken) it is
  // told about; nothing comes twice or out of order.
  const old = await rec(leader);
  assert.deepEqual(old.msgs.slice(0, 2), [1, 2]);
  assert.deepEqual(old.msgs.slice(-2), [6, 7]);
  assert.deepEqual(old.msgs, [...new Set(old.msgs)].sort((a, b) => a - b));
  assert.equal(old.resyncs, old.msgs.length < 7 ? 1 : 0, JSON.stringify(old));
});

test("tabs on different channels are independent", async (t) => {
  const context = await browser.newContext();
  t.after(() => context.close());
  const open = async (path) => {
    const page = await context.newPage();
    await page.goto(`${gw.base}/test/pages/shared.html`);
    await page.evaluate((p) => window.start(p), path);
    return page;
  };
  const a1 = await open("/ws/shared-a"), a2 = await open("/ws/shared-a"), b = await open("/ws/shared-b");
  await allOpen([a1, a2, b]);
  assert.equal(await clients(gw.base, "/ws/shared-a"), 1);
  assert.equal(await clients(gw.base, "/ws/shared-b"), 1);
  assert.equal(await b.evaluate(() => ws.isLeader()), true);
  await broadcast(gw.base, "/ws/shared-b", "only b");
  await waitFor("b receives", async () => (await rec(b)).msgs.length === 1);
  await broadcast(gw.base, "/ws/shared-a", "only a");
  await waitFor("a2 receives", async () => (await rec(a2)).msgs.length === 1);
  assert.deepEqual((await rec(a1)).msgs, ["only a"]);
  assert.deepEqual((await rec(b)).msgs, ["only b"]);
});

test("without Web Locks: one socket per tab, and a console note says so", async (t) => {
  const path = "/ws/shared-nolocks";
  const context = await browser.newContext();
  t.after(() => context.close());
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined });
  });
  const notes = [];
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const page = await context.newPage();
    page.on("console", (m) => { if (m.type() === "info") { notes.push(m.text()); } });
    await page.goto(`${gw.base}/test/pages/shared.html`);
    await page.evaluate((p) => window.start(p), path);
    pages.push(page);
  }
  await allOpen(pages);
  assert.equal(await clients(gw.base, path), 2);
  assert.equal(notes.filter((n) => n.includes("this tab keeps a socket of its own")).length, 2);
});

test("the demo page in two tabs: one socket, each tab says who holds it", async (t) => {
  const context = await browser.newContext();
  t.after(() => context.close());
  const first = await context.newPage();
  await first.goto(`${gw.base}/`);
  await first.waitForFunction(() => document.getElementById("status").textContent === "connected to ws/chat");
  const second = await context.newPage();
  await second.goto(`${gw.base}/`);
  await second.waitForFunction(() => document.getElementById("status").textContent === "connected to ws/chat");
  const line = "; the gateway counts 1 socket at /ws/chat";
  await first.waitForFunction((l) => document.getElementById("tabs").textContent === "this tab holds the socket" + l, line);
  await second.waitForFunction((l) => document.getElementById("tabs").textContent === "another tab holds the socket" + l, line);
  await second.fill("input[name=text]", "from the second tab");
  await second.click("button[type=submit]");
  for (const page of [first, second]) {
    await page.waitForFunction(() => document.getElementById("outDiv").textContent.includes("guest: from the second tab"));
  }
  assert.equal(await clients(gw.base, "/ws/chat"), 1);
});
