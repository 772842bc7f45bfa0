'use strict';
// tls12_ws_aesgcm: node ws server + client over TLS 1.2 (wss), logged with ../ws/lib/peerlog.js
// (unchanged) and lib/tlslog.js.
//   A: 127.0.0.1, ECDHE-RSA-AES128-GCM-SHA256; text and binary both ways, a 70 KB binary, a
//      fragmented text c2s (ping between fragments), a fragmented binary s2c, pings, close 1000 "bye".
//   B: ::1 (IPv6), ECDHE-RSA-AES256-GCM-SHA384; a short exchange, the server closes with 4001.
// No permessage-deflate. The client picks the suite of each connection (its cipher list).
//   node ws_tls.js RAWDIR CERTDIR PORT
const fs = require('fs');
const https = require('https');
const path = require('path');
const { TlsLog, requireRelocated } = require('./lib/tlslog');

const { PeerLog, trackServer, connect } = requireRelocated('../../ws/lib/peerlog.js');
const { WebSocket, WebSocketServer } = require('ws');

const [RAW, CERTS] = process.argv.slice(2, 4);
const PORT = Number(process.argv[4] || 9403);
const SNI = 'dissect.test';
const bytes = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

const stls = new TlsLog('server');
const ctls = new TlsLog('client');
ctls.wrapClient({ servername: SNI, ca: fs.readFileSync(path.join(CERTS, 'cert.pem')) });

function server(host) {
  const s = https.createServer({
    key: fs.readFileSync(path.join(CERTS, 'key.pem')),
    cert: fs.readFileSync(path.join(CERTS, 'cert.pem')),
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384',
  });
  stls.watchServer(s);
  return new Promise((resolve) => s.listen(PORT, host, () => resolve(s)));
}

async function serverA(c) {
  c.send('hello over TLS 1.2 / AES-128-GCM');
  await c.next(); // text
  await c.next(); // binary 256
  c.send(bytes(1000, 3));
  await c.next(); // 70000 binary
  c.send('x'.repeat(20000));
  await c.next(); // fragmented text
  c.sendFragments([bytes(300, 1), bytes(10, 2), bytes(5, 3)], true, (i) => { if (i === 0) c.ping('srv-mid-frag'); });
  await c.next(); // "ping me"
  await c.pingAndWait('server-ping');
  c.send('pinged');
  await c.done();
}

async function clientA(log) {
  const c = await connect(WebSocket, `wss://127.0.0.1:${PORT}/a`, [], { perMessageDeflate: false, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }, log);
  await c.next();
  c.send('hello from the ws client');
  c.send(bytes(256, 0));
  await c.next();
  c.send(bytes(70000, 5));
  await c.next();
  c.sendFragments([Buffer.from('fragmented '), Buffer.from('text over '), Buffer.from('TLS')], false, (i) => { if (i === 0) c.ping('cli-mid-frag'); });
  await c.next();
  await c.pingAndWait('client-ping');
  c.send('ping me');
  await c.next();
  c.close(1000, 'bye');
  await c.done();
}

async function serverB(c) {
  await c.next();
  c.send('hello over IPv6 / AES-256-GCM');
  await c.next();
  c.close(4001, 'policy: bye');
  await c.done();
}

async function clientB(log) {
  const c = await connect(WebSocket, `wss://[::1]:${PORT}/b`, [], { perMessageDeflate: false, ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' }, log);
  c.send('hello from ::1');
  await c.next();
  c.send(bytes(4000, 9));
  await c.done();
}

async function main() {
  const slog = new PeerLog('server', { scenario: 'tls12_ws_aesgcm' });
  const clog = new PeerLog('client', { scenario: 'tls12_ws_aesgcm' });
  const servers = [await server('127.0.0.1'), await server('::1')];
  const wssA = new WebSocketServer({ server: servers[0], perMessageDeflate: false });
  const wssB = new WebSocketServer({ server: servers[1], perMessageDeflate: false });
  const a = trackServer(wssA, slog);
  const b = trackServer(wssB, slog);
  await Promise.all([a.nextConnection().then(serverA), clientA(clog)]);
  await Promise.all([b.nextConnection().then(serverB), clientB(clog)]);
  await new Promise((r) => setTimeout(r, 100));
  for (const s of servers) s.close();
  const ossl = `, OpenSSL ${process.versions.openssl}`;
  slog.data.peer += ossl;
  clog.data.peer += ossl;
  slog.data.tls = stls.dump();
  clog.data.tls = ctls.dump();
  slog.write(path.join(RAW, 'server.json'));
  clog.write(path.join(RAW, 'client.json'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
