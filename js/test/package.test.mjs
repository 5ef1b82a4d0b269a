// The npm package: `npm pack` ships the single file, the ES module entry, the types and the
// split build.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { jsDir } from "./support.mjs";

test("npm pack contains everything a page needs", () => {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json"], { cwd: jsDir, encoding: "utf8" });
  const files = JSON.parse(out)[0].files.map((f) => f.path).sort();
  assert.deepEqual(files, [
    "index.mjs", "package.json", "split/websocket.js", "split/websocket.wasm", "websocket.d.ts",
    "websocket.js",
  ]);
});
