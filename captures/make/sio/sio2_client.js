'use strict';
// socket.io-client 2 scenarios (server: sio2_server.js).
//   node sio2_client.js --scenario sio2_websocket --port 9311 --log client.json

const { Recorder } = require('./lib/record');
const { args, pattern, once, sleep } = require('./lib/common');

const opt = args(process.argv.slice(2));
const rec = new Recorder('client', 'v2');
const io = require('socket.io-client-v2');
const URL = `http://127.0.0.1:${opt.port}`;

const RESERVED = new Set(['connect', 'connect_error', 'connect_timeout', 'connecting', 'disconnect', 'error',
  'reconnect', 'reconnect_attempt', 'reconnect_failed', 'reconnect_error', 'reconnecting', 'ping', 'pong']);

// A new socket on namespace `nsp`: on `manager` if given (multiplexed on its connection), else
// through io() (which reuses the cached connection to the URL unless forceNew is set).
function open(nsp, options, label, manager = null) {
  const socket = manager ? manager.socket(nsp, options) : io(URL + nsp, options);
  manager = socket.io;
  if (!manager.__watched) {
    manager.__watched = true;
    manager.__session = rec.watchClientEngine(manager.engine, label);
  }
  // the Engine.IO session id (kept after the connection closed)
  const eio = () => (manager.engine && manager.engine.id) || manager.__session.sid;
  const emit = socket.emit;
  socket.emit = function (event, ...a) {
    if (!RESERVED.has(event)) rec.app('send_event', { label, namespace: nsp, eio_sid: eio(), event });
    return emit.call(this, event, ...a);
  };
  const onevent = socket.onevent;
  socket.onevent = function (packet) {
    rec.app('recv_event', { label, namespace: nsp, eio_sid: eio(), event: packet.data[0] });
    return onevent.call(this, packet);
  };
  socket.on('connect', () => rec.app('connect', { label, namespace: nsp, eio_sid: eio(), sio_sid: socket.id }));
  socket.on('error', (err) => rec.app('connect_error', { label, namespace: nsp, eio_sid: eio(), message: String(err) }));
  socket.on('disconnect', (reason) => rec.app('disconnect', { label, namespace: nsp, eio_sid: eio(), reason }));
  socket.label = label;
  socket.eio = eio;
  return socket;
}

function call(socket, event, ...a) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ack for ${event}`)), 2000);
    socket.emit(event, ...a, (res) => {
      clearTimeout(t);
      rec.app('ack_received', { label: socket.label, namespace: socket.nsp, eio_sid: socket.eio(), event, binary: Buffer.isBuffer(res) });
      resolve(res);
    });
  });
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

function ticks(socket, n) {
  return new Promise((resolve) => {
    let k = 0;
    const on = () => { if (++k === n) { socket.off('tick', on); resolve(); } };
    socket.on('tick', on);
  });
}

// The common exchange: text event, ack, binary event with ack, two-attachment event, s2c binary.
async function basics(A) {
  A.emit('hello', { name: A.label });
  await once(A, 'welcome');
  await call(A, 'chat message', `hi from ${A.label}`);
  // multi-byte UTF-8; in UTF-16 (what v3 text payload lengths count) the emoji is a surrogate pair
  await call(A, 'chat message', 'h\u00e9llo w\u00f6rld \u2713 \u{1F600}');
  await call(A, 'upload', pattern(3072, 1));
  A.emit('pair', { a: pattern(16, 2), b: pattern(32, 4) });
  await once(A, 'download');
}

const scenarios = {
  async sio2_websocket() {
    const A = open('/', { transports: ['websocket'], reconnection: false }, 'A');
    await once(A, 'connect');
    await basics(A);

    const chat = open('/chat', {}, 'A', A.io);
    answer(chat, 'chat welcome', () => ({ thanks: true }));
    await once(chat, 'connect');
    await sleep(50);
    await call(chat, 'chat message', 'hello chat room');

    await call(A, 'bin ack please', 256);
    answer(A, 'server question', () => ({ a: 42 }));
    A.emit('ask me');
    await once(A, 'answer noted');
    answer(A, 'need bytes', (n) => pattern(n, 11));
    A.emit('ask binary');
    await once(A, 'bytes noted');

    const admin = open('/admin', {}, 'A', A.io);
    await once(admin, 'error');
    await sleep(600); // the client pings every pingInterval (500 ms)

    // the refused /admin socket stays in the manager's "connecting" list until closed, and the
    // manager only closes the connection once that list is empty
    admin.close();
    closeAction(chat, 'namespace_disconnect');
    chat.disconnect();
    closeAction(A, 'disconnect');
    A.disconnect();
    await sleep(100);

    // B: an abrupt end, the TCP connection is closed (FIN) without any goodbye
    const B = open('/', { transports: ['websocket'], forceNew: true, reconnection: false }, 'B');
    await once(B, 'connect');
    B.emit('hello', { name: 'B' });
    await once(B, 'welcome');
    await sleep(50);
    closeAction(B, 'tcp_close');
    B.io.engine.transport.ws._socket.destroy();
    await sleep(200);
  },

  async sio2_polling() {
    // A: default transports, polling then upgrade (the server delays the upgrade request)
    const A = open('/', { reconnection: false }, 'A');
    const upgraded = once(A.io.engine, 'upgrade', 4000);
    await once(A, 'connect');
    await basics(A);
    const t = ticks(A, 3);
    A.emit('burst', 3);
    await t;
    await upgraded;
    await call(A, 'chat message', 'after upgrade');
    await call(A, 'upload', pattern(1024, 5));
    closeAction(A, 'disconnect');
    A.disconnect();
    await sleep(100);

    // P: polling only; binary goes as application/octet-stream payloads
    const P = open('/', { transports: ['polling'], forceNew: true, reconnection: false }, 'P');
    await once(P, 'connect');
    await basics(P);
    const chat = open('/chat', {}, 'P', P.io);
    answer(chat, 'chat welcome', () => ({ thanks: true }));
    await once(chat, 'connect');
    await sleep(50);
    await call(chat, 'chat message', 'polling chat');
    const t2 = ticks(P, 3);
    P.emit('burst', 3);
    await t2;
    await sleep(500); // a ping or two
    closeAction(chat, 'namespace_disconnect');
    chat.disconnect();
    closeAction(P, 'disconnect');
    P.disconnect();
    await sleep(100);

    // Q: polling only with forceBase64; binary goes base64 inside text payloads ("b4...")
    const Q = open('/', { transports: ['polling'], forceNew: true, forceBase64: true, reconnection: false }, 'Q');
    await once(Q, 'connect');
    await basics(Q);
    closeAction(Q, 'disconnect');
    Q.disconnect();
    await sleep(150);
  },
};

(async () => {
  try {
    await scenarios[opt.scenario]();
    rec.extra.peer = `socket.io-client ${require('socket.io-client-v2/package.json').version} (node ${process.version})`;
    rec.extra.scenario = opt.scenario;
    rec.dump(opt.log);
    process.exit(0);
  } catch (e) {
    console.error('client failed:', e);
    rec.dump(opt.log);
    process.exit(1);
  }
})();
