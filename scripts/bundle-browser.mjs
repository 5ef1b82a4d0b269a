// Assembles the browser client from the loader js/src/websocket.js with the wasm-bindgen glue
// inside (--target no-modules; minified, imports shortened) and the wasm module:
//   js/websocket.js        the single file: loader + glue + the wasm module (gzip, base64)
//   js/split/websocket.js  loader + glue; fetches js/split/websocket.wasm from next to itself
// and prints the gzip -9 sizes. Run by scripts/build-wasm.sh.
//
//   node scripts/bundle-browser.mjs <loader-with-glue.js> <module.wasm>
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const js = path.join(repo, "js");
const [loaderPath, wasmPath] = process.argv.slice(2);
const loader = readFileSync(loaderPath, "utf8");
const wasm = readFileSync(wasmPath);

function replaceOnce(text, from, to) {
  const parts = text.split(from);
  if (parts.length !== 2) { throw new Error(`${from}: found ${parts.length - 1} times, expected once`); }
  return parts[0] + to + parts[1];
}

// The browser unpacks it with DecompressionStream("deflate-raw"); the served file is gzipped again by
// the server, which costs nothing more for base64 (6 bits per character, coded as such).
// Zopfli (npm @gfx/zopfli, a js/ dev dependency) writes deflate about 6% smaller than zlib -9
// (raw deflate: no gzip header and trailer, 18 bytes less).
const { deflateAsync } = createRequire(path.join(js, "package.json"))("@gfx/zopfli");
const packed = Buffer.from(await deflateAsync(wasm, { numiterations: 15 }));
const single = replaceOnce(loader, '"@WASM@"', JSON.stringify(packed.toString("base64")));
const split = replaceOnce(loader, '"@WASM@"', '""');

mkdirSync(path.join(js, "split"), { recursive: true });
writeFileSync(path.join(js, "websocket.js"), single);
writeFileSync(path.join(js, "split", "websocket.js"), split);
writeFileSync(path.join(js, "split", "websocket.wasm"), wasm);

const gz = (b) => gzipSync(b, { level: 9 }).length;
const singleGz = gz(Buffer.from(single));
const splitGz = gz(Buffer.from(split)) + gz(wasm);
console.log(`browser client (gzip -9): websocket.js ${singleGz} B (single file); ` +
  `split/websocket.js ${gz(Buffer.from(split))} B + split/websocket.wasm ${gz(wasm)} B = ${splitGz} B`);
