'use strict';
// ws_close_4001: the server ends the session with close code 4001, reason "policy: bye".
// The server's first message is written while the socket is corked together with the 101
// response, so it shares the TCP segment that ends the handshake.
//   node ws_close_4001.js RAWDIR [PORT]
const path = require('path');
const { WebSocket, WebSocketServer } = require('ws');
const { PeerLog, trackServer, connect } = require('./lib/peerlog');

const RAW = process.argv[2];
const PORT = Number(process.argv[3] || 9351);

async function server(log, wss) {
  wss.on('headers', (headers, req) => req.socket.cork()); // hold the 101 back ...
  const c = await trackServer(wss, log).nextConnection();
  c.send('welcome');
  c.ws._socket.uncork(); // ... and write it with the first frame
  await c.next(); // "do something forbidden"
  c.send('not allowed');
  c.close(4001, 'policy: bye');
  await c.done();
}

async function client(log) {
  const c = await connect(WebSocket, `ws://127.0.0.1:${PORT}/session`, [], { perMessageDeflate: false }, log);
  await c.next(); // welcome
  c.send('do something forbidden');
  await c.next(); // not allowed
  await c.done(); // the server closes; ws replies with the same code and reason
}

async function main() {
  const slog = new PeerLog('server', { scenario: 'ws_close_4001' });
  const clog = new PeerLog('client', { scenario: 'ws_close_4001' });
  const wss = new WebSocketServer({ host: '127.0.0.1', port: PORT, perMessageDeflate: false });
  await new Promise((r) => wss.on('listening', r));
  await Promise.all([server(slog, wss), client(clog)]);
  wss.close();
  slog.write(path.join(RAW, 'ws_close_4001.server.json'));
  clog.write(path.join(RAW, 'ws_close_4001.client.json'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
