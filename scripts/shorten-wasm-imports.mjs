// Gives the imports of the wasm-bindgen output short names, in the .wasm and in its JS glue
// alike: wasm-bindgen names each import `__wbg_<name>_<16 hex digits>` under the module
// "./<crate>_bg.js", which the two files each carry once per import (about 1 KB of the gzip
// download). Run by scripts/build-wasm.sh after wasm-opt and terser.
//
//   node scripts/shorten-wasm-imports.mjs pkg/x_bg.wasm pkg/x.js
import { readFileSync, writeFileSync } from "node:fs";

const [wasmPath, gluePath] = process.argv.slice(2);
const wasm = readFileSync(wasmPath);
let glue = readFileSync(gluePath, "utf8");

function readLeb(buf, pos) {
  let result = 0, shift = 0, byte;
  do {
    byte = buf[pos++];
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [result, pos];
}

function leb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return Buffer.from(out);
}

function name(i) {
  const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  let s = "";
  do {
    s = letters[i % letters.length] + s;
    i = Math.floor(i / letters.length) - 1;
  } while (i >= 0);
  return s;
}

// Skips an import description (kind byte and type), returning the position after it.
function skipDesc(buf, pos) {
  const kind = buf[pos++];
  if (kind === 0) return readLeb(buf, pos)[1]; // function: type index
  if (kind === 1) pos++; // table: reference type, then limits
  if (kind === 1 || kind === 2) {
    const flags = buf[pos++];
    pos = readLeb(buf, pos)[1];
    if (flags & 1) pos = readLeb(buf, pos)[1];
    return pos;
  }
  if (kind === 3) return pos + 2; // global: value type, mutability
  if (kind === 4) return readLeb(buf, pos + 1)[1]; // tag: attribute, type index
  throw new Error("unknown import kind " + kind);
}

const moduleName = "./" + wasmPath.split("/").pop().replace(/\.wasm$/, ".js");
const renamed = new Map();
const parts = [wasm.subarray(0, 8)];
let pos = 8;
while (pos < wasm.length) {
  const id = wasm[pos];
  const [size, start] = readLeb(wasm, pos + 1);
  const end = start + size;
  if (id !== 2) {
    parts.push(wasm.subarray(pos, end));
    pos = end;
    continue;
  }
  let [count, p] = readLeb(wasm, start);
  const body = [leb(count)];
  for (let i = 0; i < count; i++) {
    const [modLen, m] = readLeb(wasm, p);
    const mod = wasm.toString("utf8", m, m + modLen);
    const [fieldLen, f] = readLeb(wasm, m + modLen);
    const field = wasm.toString("utf8", f, f + fieldLen);
    const descEnd = skipDesc(wasm, f + fieldLen);
    const desc = wasm.subarray(f + fieldLen, descEnd);
    let newMod = mod, newField = field;
    if (mod === moduleName) {
      newMod = "m";
      newField = renamed.get(field) || name(renamed.size);
      renamed.set(field, newField);
    }
    body.push(leb(Buffer.byteLength(newMod)), Buffer.from(newMod));
    body.push(leb(Buffer.byteLength(newField)), Buffer.from(newField), desc);
    p = descEnd;
  }
  const content = Buffer.concat(body);
  parts.push(Buffer.from([2]), leb(content.length), content);
  pos = end;
}

function replaceExactlyOnce(text, from, to) {
  const escaped = from.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const re = new RegExp(`(?<![\\w$])(["']?)${escaped}\\1(?![\\w$])`, "g");
  const found = text.match(re) || [];
  if (found.length !== 1) {
    throw new Error(`${from}: found ${found.length} times in the glue, expected once`);
  }
  return text.replace(re, to);
}

for (const [from, to] of renamed) {
  glue = replaceExactlyOnce(glue, from, to);
}
glue = replaceExactlyOnce(glue, moduleName, '"m"');
writeFileSync(wasmPath, Buffer.concat(parts));
writeFileSync(gluePath, glue);
