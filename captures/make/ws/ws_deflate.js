'use strict';
// permessage-deflate scenarios (node ws server + ws client), every message compressed:
//   node ws_deflate.js ctx|noctx|asym RAWDIR [PORT]
//   ctx    context takeover both ways (response: "permessage-deflate")
//   noctx  server_no_context_takeover + client_no_context_takeover
//   asym   client_no_context_takeover + server_max_window_bits=10 only: c2s resets its window per
//          message, s2c keeps it (Wireshark 4.0 swaps the two and fails on s2c)
// Each side sends several similar JSON texts (later ones shrink to a few bytes under context
// takeover), a binary message, a larger repetitive text, and one fragmented compressed message.
const path = require('path');
const { WebSocket, WebSocketServer } = require('ws');
const { PeerLog, trackServer, connect } = require('./lib/peerlog');

const VARIANT = process.argv[2];
const RAW = process.argv[3];
const CONFIG = {
  ctx: {
    port: 9352,
    server: { threshold: 0 },
    client: { threshold: 0 },
  },
  noctx: {
    port: 9353,
    server: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
    client: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
  },
  asym: {
    port: 9354,
    server: { threshold: 0, clientNoContextTakeover: true, serverMaxWindowBits: 10 },
    client: { threshold: 0 },
  },
}[VARIANT];
if (!CONFIG) throw new Error(`unknown variant ${VARIANT}`);
const NAME = `ws_deflate_${VARIANT}`;
const PORT = Number(process.argv[4] || CONFIG.port);

const tick = (who, i) =>
  JSON.stringify({
    type: 'tick',
    from: who,
    seq: i,
    symbol: 'ACME',
    price: 100 + i * 0.25,
    note: 'the quick brown fox jumps over the lazy dog',
    tags: ['alpha', 'beta', 'gamma', 'delta'],
  });
const bytes = (n) => Buffer.from(Array.from({ length: n }, (_, i) => i % 16)); // compressible

async function server(log, wss) {
  const c = await trackServer(wss, log).nextConnection();
  for (let i = 0; i < 6; i++) {
    await c.next();
    c.send(tick('server', i));
  }
  await c.next(); // binary
  c.send(bytes(600));
  await c.next(); // large text
  c.send('lorem ipsum dolor sit amet '.repeat(800)); // 21600 bytes, compresses well
  await c.next(); // fragmented
  c.sendFragments([tick('server', 100), tick('server', 101)], false, (i) => c.ping('mid'));
  await c.next(); // "bye?"
  c.send(tick('server', 6));
  await c.done();
}

async function client(log) {
  const c = await connect(
    WebSocket,
    `ws://127.0.0.1:${PORT}/deflate/${VARIANT}`,
    [],
    { perMessageDeflate: CONFIG.client },
    log,
  );
  for (let i = 0; i < 6; i++) {
    c.send(tick('client', i));
    await c.next();
  }
  c.send(bytes(500));
  await c.next();
  c.send('lorem ipsum dolor sit amet '.repeat(400));
  await c.next();
  c.sendFragments([tick('client', 100), tick('client', 101), tick('client', 102)], false, null);
  await c.next();
  c.send('bye?');
  await c.next();
  c.close(1000, '');
  await c.done();
}

async function main() {
  const slog = new PeerLog('server', { scenario: NAME });
  const clog = new PeerLog('client', { scenario: NAME });
  const wss = new WebSocketServer({ host: '127.0.0.1', port: PORT, perMessageDeflate: CONFIG.server });
  await new Promise((r) => wss.on('listening', r));
  await Promise.all([server(slog, wss), client(clog)]);
  wss.close();
  slog.write(path.join(RAW, `${NAME}.server.json`));
  clog.write(path.join(RAW, `${NAME}.client.json`));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
