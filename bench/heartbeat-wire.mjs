// Pairs the `!` frames of a tcpdump text capture (bench/heartbeat-wire.sh) with their answers
// and writes the server's answer times: for the probe socket (the connection that sent the
// most `!`) and for the fleet's sockets.
//   node bench/heartbeat-wire.mjs CAPTURE.txt PORT OUT.json
import { readFileSync, writeFileSync } from 'node:fs';

const [file, port, out] = process.argv.slice(2);
const pending = new Map(); // client address -> time of its unanswered `!`
const times = new Map(); // client address -> answer times, ms
// "1764999999.123456 IP 127.0.0.200.41234 > 127.0.0.1.8080: Flags [P.], seq ..., length 7"
for (const line of readFileSync(file, 'utf8').split('\n')) {
  const m = line.match(/^(\d+\.\d+) IP (\S+) > (\S+): .* length (\d+)$/);
  if (!m) continue;
  const [, t, src, dst, len] = m;
  const fromServer = src.endsWith(`.${port}`);
  const client = fromServer ? dst : src;
  if (!fromServer && len === '7') {
    if (!pending.has(client)) pending.set(client, Number(t));
  } else if (fromServer && len === '3' && pending.has(client)) {
    if (!times.has(client)) times.set(client, []);
    times.get(client).push((Number(t) - pending.get(client)) * 1000);
    pending.delete(client);
  }
}
const stats = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { count: s.length, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: s[s.length - 1] };
};
let probe = null;
for (const [client, v] of times) if (!probe || v.length > times.get(probe).length) probe = client;
const fleet = [...times].filter(([c]) => c !== probe).flatMap(([, v]) => v);
const result = {
  what: 'time from a client `!` frame to the server answer, on the loopback interface',
  probe: probe ? stats(times.get(probe)) : null,
  fleet: fleet.length ? stats(fleet) : null,
  unanswered: pending.size,
};
writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result));
