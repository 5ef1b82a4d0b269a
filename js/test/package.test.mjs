// The npm package: `npm pack` ships the single file, the ES module entry, the types, the split
// build and a README; it refuses to pack without the built client; CommonJS and a real bundler
// (esbuild) get the two functions, and the bundled page works against the gateway.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as esbuild from "esbuild";
import { jsDir, startGateway, launchBrowser, openPage, waitFor, broadcast, clients } from "./support.mjs";

const prepack = path.join(jsDir, "..", "scripts", "npm-prepack.mjs");
let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test("npm pack contains everything a page needs", () => {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json"], { cwd: jsDir, encoding: "utf8" });
  const files = JSON.parse(out)[0].files.map((f) => f.path).sort();
  assert.deepEqual(files, [
    "README.md", "index.mjs", "package.json", "split/websocket.js", "split/websocket.wasm",
    "websocket.d.ts", "websocket.js",
  ]);
});

test("prepack refuses a package without the built client, and says what to run", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mws-pack-"));
  try {
    fs.mkdirSync(path.join(dir, "src"));
    fs.writeFileSync(path.join(dir, "src", "websocket.js"), "");
    const run = spawnSync(process.execPath, [prepack, dir], { encoding: "utf8" });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /websocket\.js is missing.*run \.\/scripts\/build-wasm\.sh/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(spawnSync(process.execPath, [prepack]).status, 0, "the built js/ packs");
});

test("require() gets the two functions", () => {
  const lib = createRequire(import.meta.url)(path.join(jsDir, "websocket.js"));
  assert.deepEqual(Object.keys(lib).sort(), ["MoleculerHttpClient", "MoleculerWebsocket"]);
  assert.equal(typeof lib.MoleculerWebsocket, "function");
});

test("a bare import of the package survives esbuild's tree shaking and defines the globals", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mws-bare-"));
  try {
    fs.mkdirSync(path.join(dir, "node_modules"));
    fs.symlinkSync(jsDir, path.join(dir, "node_modules", "moleculer-ws-browser"), "dir");
    fs.writeFileSync(path.join(dir, "main.mjs"), 'import "moleculer-ws-browser";\n');
    const out = await esbuild.build({
      entryPoints: [path.join(dir, "main.mjs")], bundle: true, format: "esm", platform: "browser",
      write: false, logLevel: "silent", minify: true,
    });
    const code = out.outputFiles[0].text;
    assert.ok(code.includes("MoleculerWebsocket") && code.length > 20000, `bundle of ${code.length} B`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a page bundled by esbuild from the package name connects and receives", async (t) => {
  // A project that installed the package (node_modules/moleculer-ws-browser -> js/).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mws-bundle-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, "node_modules"));
  fs.symlinkSync(jsDir, path.join(dir, "node_modules", "moleculer-ws-browser"), "dir");
  fs.writeFileSync(path.join(dir, "main.mjs"), `
    import { MoleculerWebsocket } from "moleculer-ws-browser";
    window.got = [];
    window.ws = MoleculerWebsocket("/ws/bundled", (m) => got.push(m));
    ws.connect();
  `);
  await esbuild.build({
    entryPoints: [path.join(dir, "main.mjs")], bundle: true, format: "esm", platform: "browser",
    outfile: path.join(dir, "site", "app.js"), logLevel: "silent",
  });
  fs.writeFileSync(path.join(dir, "site", "index.html"),
    '<!DOCTYPE html><link rel="icon" href="data:,"><script type="module" src="app.js"></script>');
  const gw = await startGateway(0, [], path.join(dir, "site"));
  t.after(() => gw.stop());
  const page = await openPage(browser, `${gw.base}/`);
  t.after(() => page.close());
  await waitFor("socket", () => clients(gw.base, "/ws/bundled"));
  await broadcast(gw.base, "/ws/bundled", { bundled: true });
  await page.waitForFunction(() => got.length === 1);
  assert.deepEqual(await page.evaluate(() => got), ['{"bundled":true}']);
  assert.deepEqual(page.errors, []);
});
