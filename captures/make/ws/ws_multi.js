'use strict';
// ws_multi: five ws clients connected at once to one ws server, messages interleaved on the wire.
// Clients 1 and 3 offer permessage-deflate (the server accepts it, threshold 0), the others do not.
// Four rounds: every client sends a text (and a binary on even rounds); the server echoes each one
// and, once all five have sent, broadcasts "round N complete" to everyone. Then clients 0-3 close
// with 1000 and the server closes client 4 with 1001 "going away".
//   node ws_multi.js RAWDIR [PORT]
const path = require('path');
const { WebSocket, WebSocketServer } = require('ws');
const { PeerLog, trackServer, connect } = require('./lib/peerlog');

const RAW = process.argv[2];
const PORT = Number(process.argv[3] || 9356);
const N = 5;
const ROUNDS = 4;

async function serveOne(c, index, rounds) {
  for (let r = 0; r < ROUNDS; r++) {
    const want = r % 2 === 0 ? 2 : 1;
    for (let k = 0; k < want; k++) {
      const m = await c.next();
      c.send(m.isBinary ? m.data : `echo: ${m.data.toString()}`, { binary: m.isBinary });
    }
    rounds[r].arrived();
  }
  if (index === N - 1) {
    await c.next(); // "done"
    c.close(1001, 'going away');
  }
  await c.done();
}

async function server(log, wss) {
  const srv = trackServer(wss, log);
  const conns = [];
  const rounds = Array.from({ length: ROUNDS }, (_, r) => {
    let left = N;
    return {
      arrived() {
        if (--left === 0) conns.forEach((c) => c.send(`round ${r} complete`));
      },
    };
  });
  const tasks = [];
  for (let i = 0; i < N; i++) {
    const c = await srv.nextConnection();
    conns.push(c);
    const index = Number(c.rec.handshake.request_target.split('/').pop());
    tasks.push(serveOne(c, index, rounds));
  }
  await Promise.all(tasks);
}

async function client(log, i) {
  const deflate = i === 1 || i === 3 ? { threshold: 0 } : false;
  const c = await connect(WebSocket, `ws://127.0.0.1:${PORT}/multi/${i}`, [], { perMessageDeflate: deflate }, log);
  for (let r = 0; r < ROUNDS; r++) {
    c.send(`client ${i} round ${r}: ${'x'.repeat(10 * i + r)}`);
    await c.next(); // echo
    if (r % 2 === 0) {
      c.send(Buffer.alloc(100 * (i + 1) + r, i));
      await c.next(); // echo
    }
    await c.next(); // round complete
  }
  if (i === N - 1) c.send('done');
  else c.close(1000, `client ${i} leaving`);
  await c.done();
}

async function main() {
  const slog = new PeerLog('server', { scenario: 'ws_multi' });
  const clog = new PeerLog('client', { scenario: 'ws_multi' });
  const wss = new WebSocketServer({ host: '127.0.0.1', port: PORT, perMessageDeflate: { threshold: 0 } });
  await new Promise((r) => wss.on('listening', r));
  const clients = Array.from({ length: N }, (_, i) => client(clog, i));
  await Promise.all([server(slog, wss), ...clients]);
  wss.close();
  slog.write(path.join(RAW, 'ws_multi.server.json'));
  clog.write(path.join(RAW, 'ws_multi.client.json'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
