'use strict';
// socket.io-client 4 over https/wss (server: sio4_tls_server.js).
//   node sio4_tls_client.js --scenario NAME --port 9401 --log client.json --cert DIR
// Every TLS connection of the process (polling requests through xmlhttprequest-ssl, the WebSocket
// through ws) goes through tls.connect, wrapped by lib/tlslog.js: SNI "dissect.test", the test CA,
// and a per-connection log (version, cipher, ALPN, resumption, key log lines).

const fs = require('fs');
const https = require('https');
const path = require('path');
const { TlsLog, requireRelocated } = require('./lib/tlslog');
const { args, pattern, once, sleep } = require('../sio/lib/common');

const { Recorder } = requireRelocated('../../sio/lib/record.js');
const opt = args(process.argv.slice(2));
const rec = new Recorder('client', 'v4');
const tlslog = new TlsLog('client');
tlslog.wrapClient({ servername: 'dissect.test', ca: fs.readFileSync(path.join(opt.cert, 'cert.pem')) });
const { io } = require('socket.io-client');
const URL = `https://127.0.0.1:${opt.port}`;
// One keep-alive agent for the polling requests, like a browser's connection pool (it also keeps
// the TLS sessions the server hands out, so a new connection may resume one).
const agent = new https.Agent({ keepAlive: true });

function open(nsp, options, label, manager = null) {
  const socket = manager ? manager.socket(nsp, options) : io(URL + nsp, options);
  manager = socket.io;
  if (!manager.__watched) {
    manager.__watched = true;
    manager.__session = rec.watchClientEngine(manager.engine, label);
  }
  const eio = () => (manager.engine && manager.engine.id) || manager.__session.sid;
  socket.onAny((event) => rec.app('recv_event', { label, namespace: nsp, eio_sid: eio(), event }));
  socket.onAnyOutgoing((event) => rec.app('send_event', { label, namespace: nsp, eio_sid: eio(), event }));
  socket.on('connect', () => rec.app('connect', { label, namespace: nsp, eio_sid: eio(), sio_sid: socket.id }));
  socket.on('connect_error', (err) => rec.app('connect_error', { label, namespace: nsp, eio_sid: eio(), message: err.message }));
  socket.on('disconnect', (reason) => rec.app('disconnect', { label, namespace: nsp, eio_sid: eio(), reason }));
  socket.label = label;
  socket.eio = eio;
  return socket;
}

async function call(socket, event, ...a) {
  const res = await socket.timeout(2000).emitWithAck(event, ...a);
  rec.app('ack_received', { label: socket.label, namespace: socket.nsp, eio_sid: socket.eio(), event, binary: Buffer.isBuffer(res) });
  return res;
}

function answer(socket, event, fn) {
  socket.on(event, (arg, cb) => {
    const res = fn(arg);
    rec.app('ack_sent', { label: socket.label, namespace: socket.nsp, eio_sid: socket.eio(), event, binary: Buffer.isBuffer(res) });
    cb(res);
  });
}

function closeAction(socket, action) {
  rec.app('close_action', { label: socket.label, eio_sid: socket.eio(), action });
}

// a short WebSocket-only session: "/" and "/chat", events and acks both ways, binary, clean close
async function shortWebsocket() {
  const A = open('/', { transports: ['websocket'], reconnection: false }, 'A');
  await once(A, 'connect');
  A.emit('hello', { name: 'A' });
  await once(A, 'welcome');
  await call(A, 'chat message', 'over TLS');
  await call(A, 'upload', pattern(1200, 4));
  const chat = open('/chat', {}, 'A', A.io);
  answer(chat, 'chat welcome', () => ({ thanks: true }));
  await once(chat, 'connect');
  await sleep(50);
  await call(chat, 'chat message', 'hello chat room');
  answer(A, 'server question', () => ({ a: 42 }));
  A.emit('ask me');
  await once(A, 'answer noted');
  closeAction(chat, 'namespace_disconnect');
  chat.disconnect();
  closeAction(A, 'disconnect');
  A.disconnect();
  await sleep(150);
}

const scenarios = {
  // Default transports: polling over https first (the server holds the upgrade back 600 ms), then
  // the upgrade to wss; "/chat" joins after the upgrade.
  async tls13_sio4_polling_upgrade() {
    const A = open('/', { reconnection: false, agent }, 'A');
    const upgraded = once(A.io.engine, 'upgrade', 4000);
    await once(A, 'connect');
    A.emit('hello', { name: 'A' });
    await once(A, 'welcome');
    await call(A, 'chat message', 'before upgrade');
    await call(A, 'chat message', 'h\u00e9llo w\u00f6rld \u2713 \u{1F600}');
    await call(A, 'upload', pattern(1500, 1));
    const ticks = new Promise((resolve) => { let n = 0; A.on('tick', () => { if (++n === 3) resolve(); }); });
    A.emit('burst', 3);
    await ticks;
    rec.app('note', { label: 'A', text: `transport before upgrade wait: ${A.io.engine.transport.name}` });
    await upgraded;
    await call(A, 'chat message', 'after upgrade');
    await call(A, 'upload', pattern(3072, 2));
    await call(A, 'bin ack please', 256);
    const chat = open('/chat', {}, 'A', A.io);
    answer(chat, 'chat welcome', () => ({ thanks: true }));
    await once(chat, 'connect');
    await sleep(50);
    await call(chat, 'chat message', 'hello chat room');
    await call(chat, 'chat binary', pattern(1000, 5));
    answer(A, 'server question', () => ({ a: 42 }));
    A.emit('ask me');
    await once(A, 'answer noted');
    await sleep(700); // a couple of ping/pong exchanges over wss
    closeAction(chat, 'namespace_disconnect');
    chat.disconnect();
    closeAction(A, 'disconnect');
    A.disconnect();
    await sleep(150);
  },
  tls13_dsb: shortWebsocket,
  tls_nokeys: shortWebsocket,
};

(async () => {
  let rc = 0;
  try {
    await scenarios[opt.scenario]();
  } catch (e) {
    console.error('client failed:', e);
    rc = 1;
  }
  agent.destroy();
  rec.extra.peer = `socket.io-client ${require('socket.io-client/package.json').version} (node ${process.version}, OpenSSL ${process.versions.openssl})`;
  rec.extra.scenario = opt.scenario;
  rec.extra.tls = tlslog.dump();
  rec.dump(opt.log);
  process.exit(rc);
})();
