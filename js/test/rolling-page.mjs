// A browser page for the rolling-restart test (tests/tests/rolling_restart.rs), driven line by
// line like tests/moleculer-node/broker.js:
//
//   node test/rolling-page.mjs <page-url> <ws-url>
//
// Opens <page-url> (test/pages/probe.html served by the gateways) in headless Chromium,
// connects MoleculerWebsocket(<ws-url>) with `recover: true`, prints `@@ {"ready":true}` once
// it is open, and on each stdin line `report` prints `@@ {"opens":[...],"msgs":[...],
// "resyncs":n,"errors":[...]}`. Closes the browser when stdin closes.
import { createInterface } from "node:readline";
import { launchBrowser, openPage, waitFor } from "./support.mjs";

const [pageUrl, wsUrl] = process.argv.slice(2);
const reply = (obj) => process.stdout.write("@@ " + JSON.stringify(obj) + "\n");

const browser = await launchBrowser();
try {
  const page = await openPage(browser, pageUrl);
  await page.evaluate((url) => {
    window.rec = { opens: [], msgs: [], resyncs: 0 };
    window.rws = MoleculerWebsocket(url, (m) => rec.msgs.push(Number(m)), {
      recover: true,
      reconnectDelay: 300,
      onopen: (evt, info) => rec.opens.push(info),
      onresync: () => { rec.resyncs += 1; },
    });
    rws.connect();
  }, wsUrl);
  await waitFor("the first open", async () => page.evaluate(() => window.rec.opens.length >= 1));
  reply({ ready: true });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === "report") {
      const rec = await page.evaluate(() => window.rec);
      reply({ ...rec, errors: page.errors });
    }
  }
  await page.evaluate(() => window.rws.disconnect());
} finally {
  await browser.close();
}
