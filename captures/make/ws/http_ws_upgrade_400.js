'use strict';
// http_ws_upgrade_400: a WebSocket upgrade refused with 400, then an accepted one.
// The ws server's verifyClient rejects requests without ?token=ok (400, body "missing token");
// the first ws client gets the 400 ('unexpected-response'), the second one connects, exchanges one
// message each way and closes with 1000.
//   node http_ws_upgrade_400.js RAWDIR [PORT]
const path = require('path');
const { WebSocket, WebSocketServer } = require('ws');
const { PeerLog, trackServer, connect, now } = require('./lib/peerlog');

const RAW = process.argv[2];
const PORT = Number(process.argv[3] || 9361);
const REJECT_BODY = 'missing token';

function rejectedAttempt(clog) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${PORT}/chat`, { perMessageDeflate: false });
    ws.on('error', () => {}); // terminate() below reports "closed before established"
    ws.on('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        clog.data.http.push({
          client_port: req.socket.localPort,
          method: req.method,
          target: req.path,
          status: res.statusCode,
          body_bytes: body.length,
          body: body.toString(),
          content_length: Number(res.headers['content-length']),
        });
        ws.terminate();
        resolve();
      });
      res.on('error', reject);
    });
    ws.on('open', () => reject(new Error('should have been refused')));
  });
}

async function main() {
  const slog = new PeerLog('server', { scenario: 'http_ws_upgrade_400', http: [] });
  const clog = new PeerLog('client', { scenario: 'http_ws_upgrade_400', http: [] });
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: PORT,
    perMessageDeflate: false,
    verifyClient: (info, cb) => {
      const ok = new URL(info.req.url, 'http://x').searchParams.get('token') === 'ok';
      if (!ok) {
        slog.data.http.push({
          client_port: info.req.socket.remotePort,
          method: info.req.method,
          target: info.req.url,
          status: 400,
          content_length: Buffer.byteLength(REJECT_BODY),
          body_bytes: Buffer.byteLength(REJECT_BODY),
          upgrade: info.req.headers.upgrade,
          t_server: now() / 1000,
        });
      }
      cb(ok, 400, REJECT_BODY);
    },
  });
  await new Promise((r) => wss.on('listening', r));
  const srv = trackServer(wss, slog);

  await rejectedAttempt(clog);

  const serverSide = (async () => {
    const c = await srv.nextConnection();
    const m = await c.next();
    c.send(`echo: ${m.data}`);
    await c.done();
  })();
  const c = await connect(WebSocket, `ws://127.0.0.1:${PORT}/chat?token=ok`, [], { perMessageDeflate: false }, clog);
  c.send('hello after 400');
  await c.next();
  c.close(1000, '');
  await c.done();
  await serverSide;
  wss.close();
  slog.write(path.join(RAW, 'http_ws_upgrade_400.server.json'));
  clog.write(path.join(RAW, 'http_ws_upgrade_400.client.json'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
