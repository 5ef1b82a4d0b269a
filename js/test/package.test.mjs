// The npm package: `npm pack` ships the loader, the ES module entry, the types and the wasm.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { jsDir } from "./support.mjs";

test("npm pack contains everything a page needs", () => {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json"], { cwd: jsDir, encoding: "utf8" });
  const files = JSON.parse(out)[0].files.map((f) => f.path).sort();
  assert.deepEqual(files, [
    "index.mjs", "package.json", "pkg/moleculer_ws_wasm.js", "pkg/moleculer_ws_wasm_bg.wasm",
    "websocket.d.ts", "websocket.js",
  ]);
});
