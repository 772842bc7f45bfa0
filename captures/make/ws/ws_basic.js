'use strict';
// ws_basic: node ws server + ws client, permessage-deflate off, subprotocol chat.v1.
// Text and binary both ways (7-bit, 16-bit and 64-bit length forms, ~70 KB messages both ways, and
// the boundary sizes 125/126/65535 c2s and 125/126/65536 s2c), an empty message, UTF-8 texts, a
// burst of three messages written while the socket is corked, fragmented messages both ways with a
// ping between fragments (a UTF-8 code point split across fragments c2s), pings both ways, clean
// close 1000 "bye" from the client.
//   node ws_basic.js RAWDIR [PORT]
const path = require('path');
const { WebSocket, WebSocketServer } = require('ws');
const { PeerLog, trackServer, connect } = require('./lib/peerlog');

const RAW = process.argv[2];
const PORT = Number(process.argv[3] || 9350);

const bytes = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));
const text = (n, word) => word.repeat(Math.ceil(n / word.length)).slice(0, n);

async function server(log, wss) {
  const c = await trackServer(wss, log).nextConnection();
  c.send('hello from server');
  let m = await c.next(); // hello from client
  m = await c.next(); // 256 bytes binary
  c.send(bytes(1000, 3)); // 16-bit length
  m = await c.next(); // 70000 bytes binary (64-bit length)
  c.send(text(70000, 'server-large-text ')); // 64-bit length, text
  m = await c.next(); // empty text
  c.send('');
  m = await c.next(); // utf-8 text
  c.send('grüße, ζωή, 日本語, emoji 🎉');
  for (let k = 0; k < 3; k++) m = await c.next(); // 125, 126, 65535 bytes
  c.send(bytes(125, 4)); // largest 7-bit length
  c.send(bytes(126, 5)); // smallest 16-bit length
  c.send(bytes(65536, 6)); // smallest 64-bit length
  m = await c.next(); // fragmented text
  // Fragmented binary s2c, ping between fragments 1 and 2.
  c.sendFragments([bytes(300, 1), bytes(10, 2), bytes(5, 3)], true, (i) => {
    if (i === 0) c.ping('srv-mid-frag');
  });
  m = await c.next(); // "burst please"
  c.ws._socket.cork(); // three frames handed to TCP at once
  c.send('burst-1');
  c.send('burst-2');
  c.send(bytes(20, 9));
  process.nextTick(() => c.ws._socket.uncork());
  m = await c.next(); // "ping me"
  await c.pingAndWait('server-ping');
  c.send('pinged');
  await c.done(); // client closes
}

async function client(log) {
  const c = await connect(
    WebSocket,
    `ws://127.0.0.1:${PORT}/basic`,
    ['chat.v2', 'chat.v1'],
    { perMessageDeflate: false },
    log,
  );
  await c.next(); // hello from server
  c.send('hello from client');
  c.send(bytes(256, 0)); // 16-bit length form starts at 126
  await c.next();
  c.send(bytes(70000, 5));
  await c.next();
  c.send('');
  await c.next();
  c.send('naïve café – €100 ✓');
  await c.next();
  c.send(bytes(125, 1)); // length-form boundaries: 125 | 126 ... 65535 | 65536
  c.send(bytes(126, 2));
  c.send(bytes(65535, 3)); // largest 16-bit length
  for (let k = 0; k < 3; k++) await c.next();
  // Fragmented text; the 3-byte "€" is split between fragments 2 and 3; ping after fragment 1.
  const whole = Buffer.from('fragmented text: price €42, done');
  const euro = whole.indexOf(Buffer.from('€'));
  c.sendFragments([whole.subarray(0, 10), whole.subarray(10, euro + 1), whole.subarray(euro + 1)], false, (i) => {
    if (i === 0) c.ping('cli-mid-frag');
  });
  await c.next(); // fragmented binary from server
  c.send('burst please');
  await c.next();
  await c.next();
  await c.next();
  await c.pingAndWait('client-ping');
  c.send('ping me');
  await c.next(); // pinged
  c.close(1000, 'bye');
  await c.done();
}

async function main() {
  const slog = new PeerLog('server', { scenario: 'ws_basic' });
  const clog = new PeerLog('client', { scenario: 'ws_basic' });
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: PORT,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has('chat.v1') ? 'chat.v1' : false),
  });
  await new Promise((r) => wss.on('listening', r));
  await Promise.all([server(slog, wss), client(clog)]);
  wss.close();
  slog.write(path.join(RAW, 'ws_basic.server.json'));
  clog.write(path.join(RAW, 'ws_basic.client.json'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
