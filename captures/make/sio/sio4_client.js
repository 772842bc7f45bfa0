'use strict';
// socket.io-client 4 scenarios (server: sio4_server.js).
//   node sio4_client.js --scenario sio4_websocket --port 9301 --log client.json

const { Recorder } = require('./lib/record');
const { args, pattern, once, sleep } = require('./lib/common');

const opt = args(process.argv.slice(2));
const rec = new Recorder('client', 'v4');
const { io } = require('socket.io-client');
const URL = `http://127.0.0.1:${opt.port}`;

// Open a socket and log what the application sees on it.
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
  socket.onAny((event) => rec.app('recv_event', { label, namespace: nsp, eio_sid: eio(), event }));
  socket.onAnyOutgoing((event) => rec.app('send_event', { label, namespace: nsp, eio_sid: eio(), event }));
  socket.on('connect', () => rec.app('connect', { label, namespace: nsp, eio_sid: eio(), sio_sid: socket.id }));
  socket.on('connect_error', (err) => rec.app('connect_error', { label, namespace: nsp, eio_sid: eio(), message: err.message, data: err.data }));
  socket.on('disconnect', (reason) => rec.app('disconnect', { label, namespace: nsp, eio_sid: eio(), reason }));
  socket.label = label;
  socket.eio = eio;
  return socket;
}

// emitWithAck, logging the ack the application got back
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

const scenarios = {
  // WebSocket only: "/" and "/chat" multiplexed on one connection (A), a second connection (B),
  // events and acks both ways, binary events and acks, a broadcast, a clean and an abrupt close.
  async sio4_websocket() {
    const A = open('/', { transports: ['websocket'], reconnection: false }, 'A');
    await once(A, 'connect');
    A.emit('hello', { name: 'A' });
    await once(A, 'welcome');
    await call(A, 'chat message', 'first message');

    const chat = open('/chat', {}, 'A', A.io);
    answer(chat, 'chat welcome', () => ({ thanks: true }));
    await once(chat, 'connect');
    await sleep(50);
    await call(chat, 'chat message', 'hello chat room');
    await call(chat, 'chat binary', pattern(1000, 5));

    await call(A, 'upload', pattern(3072, 1));
    A.emit('pair', { a: pattern(16, 2), b: pattern(32, 4) });
    await once(A, 'download');
    await call(A, 'bin ack please', 256);

    answer(A, 'server question', () => ({ a: 42 }));
    A.emit('ask me');
    await once(A, 'answer noted');
    answer(A, 'need bytes', (n) => pattern(n, 11));
    A.emit('ask binary');
    await once(A, 'bytes noted');

    const B = open('/', { transports: ['websocket'], forceNew: true, reconnection: false }, 'B');
    await once(B, 'connect');
    const news = Promise.all([once(A, 'news'), once(B, 'news')]);
    A.emit('broadcast me', 'hello everyone');
    await news;
    B.emit('hello', { name: 'B' });
    await once(B, 'welcome');
    await sleep(50);

    // clean close of A: namespace "/chat" first, then "/" (which closes the connection)
    closeAction(chat, 'namespace_disconnect');
    chat.disconnect();
    closeAction(A, 'disconnect');
    A.disconnect();
    await sleep(100);
    // abrupt close of B: reset its TCP connection, no Socket.IO/Engine.IO/WebSocket goodbye
    closeAction(B, 'tcp_reset');
    B.io.engine.transport.ws._socket.resetAndDestroy();
    await sleep(200);
  },

  // Default transports: polling first, upgrade to WebSocket (the server holds the upgrade request
  // back for a while so that some traffic goes over polling). Short ping interval.
  async sio4_polling_upgrade() {
    const A = open('/', { reconnection: false }, 'A');
    const upgraded = once(A.io.engine, 'upgrade', 4000);
    await once(A, 'connect');
    A.emit('hello', { name: 'A' });
    await once(A, 'welcome');
    await call(A, 'chat message', 'before upgrade');
    await call(A, 'chat message', 'h\u00e9llo w\u00f6rld \u2713 \u{1F600}'); // multi-byte UTF-8
    await call(A, 'upload', pattern(1500, 1));
    const ticks = new Promise((resolve) => { let n = 0; A.on('tick', () => { if (++n === 3) resolve(); }); });
    A.emit('burst', 3);
    await ticks;
    rec.app('note', { label: 'A', text: `transport before upgrade wait: ${A.io.engine.transport.name}` });
    await upgraded;
    await call(A, 'chat message', 'after upgrade');
    await call(A, 'upload', pattern(3072, 2));
    answer(A, 'server question', () => ({ a: 42 }));
    A.emit('ask me');
    await once(A, 'answer noted');
    await sleep(700); // a couple of ping/pong exchanges over WebSocket
    closeAction(A, 'disconnect');
    A.disconnect();
    await sleep(100);
  },

  // A: "/auth" with a good token (CONNECT carries the auth object), then "/admin" on the same
  // connection, refused by middleware; finally the server disconnects A.
  // B: "/auth" with a bad token, refused with error data; the client then closes the connection.
  async sio4_connect_error() {
    const auth = open('/auth', { transports: ['websocket'], reconnection: false, auth: { token: 'secret-token-123' } }, 'A');
    await once(auth, 'connect');
    await call(auth, 'whoami');
    const admin = open('/admin', {}, 'A', auth.io);
    const err = await once(admin, 'connect_error');
    rec.app('note', { label: 'A', text: `admin refused: ${err.message}` });

    const bad = open('/auth', { transports: ['websocket'], forceNew: true, reconnection: false, auth: { token: 'wrong-token' } }, 'B');
    const err2 = await once(bad, 'connect_error');
    closeAction(bad, 'closed_after_connect_error');
    rec.app('note', { label: 'B', text: `auth refused: ${err2.message} ${JSON.stringify(err2.data)}` });
    await sleep(100);

    await call(auth, 'whoami');
    closeAction(auth, 'server_disconnect');
    const gone = once(auth, 'disconnect');
    auth.emit('kick me');
    await gone;
    await sleep(200);
  },

  // A short WebSocket session (captured on "any", SLL).
  async sio4_any_sll() {
    const A = open('/', { transports: ['websocket'], reconnection: false }, 'A');
    await once(A, 'connect');
    A.emit('hello', { name: 'A' });
    await once(A, 'welcome');
    await call(A, 'chat message', 'over the any device');
    await call(A, 'upload', pattern(600, 7));
    closeAction(A, 'disconnect');
    A.disconnect();
    await sleep(100);
  },
};

(async () => {
  try {
    await scenarios[opt.scenario]();
    rec.extra.peer = `socket.io-client ${require('socket.io-client/package.json').version} (node ${process.version})`;
    rec.extra.scenario = opt.scenario;
    rec.dump(opt.log);
    process.exit(0);
  } catch (e) {
    console.error('client failed:', e);
    rec.dump(opt.log);
    process.exit(1);
  }
})();
