// The Node.js `ws` baseline of the benchmarks: the same protocol as the gateway.
// Sockets are registered per path (percent-decoded, no query); a text or binary frame starting
// with `!` is answered with `!`; POST /api/websocket/send {path, data} sends the compact JSON of
// `data` to every socket at the path, serialised once into one Buffer shared by every send.
// Usage: node server.js [host:port] [--deflate]
// --deflate: ws's own permessage-deflate with its defaults (`perMessageDeflate: true`: each
// socket compresses what it sends, messages of 1 KiB and more, with its own context).
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

// Port 0 picks a free port: the first stdout line says which (bench/run.sh reads it).
const args = process.argv.slice(2);
const deflate = args.includes('--deflate');
const [host, port] = (args.find((a) => !a.startsWith('--')) || '127.0.0.1:0').split(':');
const paths = new Map(); // path -> Set<WebSocket>
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: deflate });

function registryPath(url) {
  const raw = url.split('?')[0];
  let p;
  try { p = decodeURIComponent(raw); } catch { p = raw; }
  return p.startsWith('/') ? p : '/' + p;
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url.split('?')[0] !== '/api/websocket/send') {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ success: false, message: 'Not Found: ' + req.url }));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch {
      res.writeHead(400); res.end(); return;
    }
    if (body && typeof body.path === 'string' && body.path !== '') {
      const path = body.path.startsWith('/') ? body.path : '/' + body.path;
      const sockets = paths.get(path);
      if (sockets) {
        const frame = Buffer.from(JSON.stringify(body.data === undefined ? null : body.data));
        for (const ws of sockets) ws.send(frame, { binary: false });
      }
    }
    res.writeHead(204); res.end();
  });
});

server.on('upgrade', (req, socket, head) => {
  socket.setNoDelay(true);
  wss.handleUpgrade(req, socket, head, (ws) => {
    const path = registryPath(req.url);
    let set = paths.get(path);
    if (!set) { set = new Set(); paths.set(path, set); }
    set.add(ws);
    ws.on('message', (data) => { if (data.length > 0 && data[0] === 0x21) ws.send('!'); });
    ws.on('close', () => set.delete(ws));
    ws.on('error', () => {});
  });
});

server.listen(Number(port), host, () => console.log(`node ws baseline${deflate ? ' (perMessageDeflate)' : ''} on ${host}:${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
