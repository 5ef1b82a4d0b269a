// npm's prepack for js/ (the package moleculer-ws-browser): refuses to pack a package without
// the built browser client. The files come from scripts/build-wasm.sh; they are not in git.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// The package folder: js/ (or the first argument, for the test of this script).
const js = process.argv[2] ? path.resolve(process.argv[2])
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "js");
const built = ["websocket.js", "split/websocket.js", "split/websocket.wasm"];
const source = fs.statSync(path.join(js, "src", "websocket.js")).mtimeMs;
const problems = [];
for (const f of built) {
  const file = path.join(js, f);
  if (!fs.existsSync(file)) {
    problems.push(`${f} is missing`);
  } else if (fs.statSync(file).mtimeMs < source) {
    problems.push(`${f} is older than src/websocket.js`);
  }
}
if (problems.length) {
  console.error(`moleculer-ws-browser: ${problems.join("; ")}: run ./scripts/build-wasm.sh ` +
    "from the repository root, then pack again");
  process.exit(1);
}
