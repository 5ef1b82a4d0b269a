// Prints the BENCHMARKS.md section "Browser client: one file, one socket for all tabs" from the
// results of js/bench/browser-client.mjs, so that its figures are those of one run.
//   node js/bench/browser-client-report.mjs [bench/results/issue-20/browser-client.json]
import fs from "node:fs";
import path from "node:path";
import { repo } from "./support.mjs";

const file = process.argv[2] || "bench/results/issue-20/browser-client.json";
const r = JSON.parse(fs.readFileSync(path.resolve(repo, file), "utf8"));
const n = (x) => x.toLocaleString("en-US");
const S = r.sizes, single = S.single.gzip;
const rows = [
  ["single", "**websocket.js, one file** (ours)"],
  ["split", "split build: `split/websocket.js` + `split/websocket.wasm` (ours)"],
  ["socket.io-client", `socket.io-client ${S["socket.io-client"].version} \`dist/socket.io.min.js\``],
  ["centrifuge-js", `centrifuge-js ${S["centrifuge-js"].version} \`dist/centrifuge.js\``],
].map(([k, label]) => `| ${label} | ${n(S[k].gzip)} | ${n(S[k].brotli)} | ${(single / S[k].gzip).toFixed(2)} |`);
const fm = r.firstMessageMs, om = r.openMs, h = r.handOverMs, so = r.socketsFor10Tabs;
const mm = (x) => `${x.median} (${x.min}–${x.max})`;
const ratio = fm.single.median / fm.split.median;
const spread = (x) => x.max - x.min;
const wide = Math.min(spread(fm.single), spread(fm.split)) > Math.abs(fm.single.median - fm.split.median);
const date = fs.statSync(path.resolve(repo, file)).mtime.toISOString().slice(0, 10);
// The drop-in's size at each step of issue 20: "commit zlib gzip" lines after a header.
const steps = fs.readFileSync(path.resolve(repo, "bench/results/issue-20/bundle-steps.txt"), "utf8")
  .trim().split("\n").slice(1).map((l) => {
    const [commit, zlib, gnu] = l.trim().split(/\s+/);
    return { commit, zlib: Number(zlib), gnu: Number(gnu) };
  });
console.log(`## Browser client: one file, one socket for all tabs (issues 17 and 20), ${date}

\`node js/bench/browser-client.mjs --runs 15 --out ${file}\`
(about 20 s, after \`cargo build --release -p moleculer-ws-server\` and \`scripts/build-wasm.sh\`;
headless Chromium ${r.chromium}, the release gateway on 127.0.0.1), then
\`node js/bench/browser-client-report.mjs\`, which writes this section. All figures below come
from this run (\`${file}\`).

What a page downloads, compressed as a server sends it (the baselines are the npm packages'
browser bundles, dev dependencies of \`js/\`):

| client | gzip -9 (B) | brotli -11 (B) | ours (single, gzip) / it |
| --- | ---: | ---: | ---: |
${rows.join("\n")}

The single file is at most 31,500 B gzipped (checked by \`js/test/single.test.mjs\`):
${n(single)} B with Node's zlib at level 9 (this table), and ${n(S.single.gnuGzip)} B with GNU
\`gzip -9\`. Issue 17's limit was 30,000 B; the event-stream transport and \`transport:
"auto"\` (issue 20) missed it by ${n(Math.max(single, S.single.gnuGzip) - 30000)} B. What each step cost
(\`bench/issue-20-bundle.sh ${steps.map((x) => x.commit).join(" ")}\` -> \`bench/results/issue-20/bundle-steps.txt\`,
zlib / GNU gzip): ${n(steps[0].zlib)} / ${n(steps[0].gnu)} B before issue 20 (${steps[0].commit}); the session core's rules for streams and
\`auto\` (${steps[1].commit}) +${n(steps[1].zlib - steps[0].zlib)} / +${n(steps[1].gnu - steps[0].gnu)} B; what came after (the browser's \`EventSource\` path, the \`transport\`
option; ${steps[2].commit}) +${n(steps[2].zlib - steps[1].zlib)} / +${n(steps[2].gnu - steps[1].gnu)} B. What would win it back: the module carries the standard library's
panic formatting (\`core::fmt::write\`, \`Formatter::pad\`, \`pad_integral\`,
\`do_count_chars\`: about 3 KB before compression, \`bench/results/issue-20/twiggy-top.txt\`),
which only a nightly toolchain with \`rust-src\` (\`panic_immediate_abort\`) leaves out; or an
\`EventSource\` shim in the loader in place of the wasm path. It is ${(single / S["socket.io-client"].gzip).toFixed(2)}x socket.io-client and
${(single / S["centrifuge-js"].gzip).toFixed(2)}x centrifuge-js: the difference is the session core compiled to WebAssembly (the same Rust code as the Rust
client: heartbeat, reconnect, recovery), which those libraries write in JavaScript. The module
inside is deflated by zopfli before base64, tighter than a server's gzip -9 packs the split
build's \`.wasm\`: with gzip the two builds weigh the same (${n(S.single.gzip)} and ${n(S.split.gzip)} B);
with brotli the split build is smaller (${n(S.split.brotli)} B against ${n(S.single.brotli)} B), brotli compressing
the raw module better than the formats \`DecompressionStream\` knows (gzip, deflate).

Page start to first message: a fresh browser context (no cache) loads a page with the single
file or the split build and connects to a channel the gateway broadcasts to every 5 ms; the
time is \`performance.now()\` at the first message (navigation start = 0). ${fm.single.runs.length} pages
each, alternating:

| build | first message: median (min–max), ms | socket open: median (min–max), ms |
| --- | ---: | ---: |
| single file | ${mm(fm.single)} | ${mm(om.single)} |
| split build | ${mm(fm.split)} | ${mm(om.split)} |

Single / split = ${ratio.toFixed(2)} at the median (${fm.single.median - fm.split.median} ms)${wide
    ? `; each build's runs spread more than that (${spread(fm.single)} and ${spread(fm.split)} ms between the fastest and the slowest page)`
    : ""}.
On 127.0.0.1 a second request is almost free; not measured here: over a real network the split
build pays a second round trip for its \`.wasm\`, the single file none.

Sockets on the gateway (\`GET /api/websocket/clients\`) for 10 tabs of one browser on one
channel: **${so.plain}** without \`shared\`, **${so.shared}** with \`shared: true\`.

Hand-over: 3 tabs share a channel; the leader's tab closes; time until another tab holds the
lock with its channel open again (polled every 5 ms): median **${h.median} ms** (min ${h.min},
max ${h.max}, ${h.runs.length} runs), against a heartbeat interval of 6,000 ms (the default).
`);
