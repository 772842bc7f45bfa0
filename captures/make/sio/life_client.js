'use strict';
// Socket-lifecycle scenarios (servers: sio4_life_server.js, sio2_server.js): how Socket.IO sockets
// end (ping timeout, client/server namespace disconnect, killed process, TCP reset, server shutdown),
// connection-state recovery, broadcasts, the msgpack parser.
//   node life_client.js --flavour v4 --scenario sio4_disconnects --port 9351 --log DIR/client.json
//
// Clients that get frozen (SIGSTOP) or killed (SIGKILL) run in child processes (this file with
// --child LABEL, forked by the scenario; log DIR/client-LABEL.json). The parent drives them over the
// IPC channel: {cmd: 'open'}, {cmd: 'note'} (log an app record before a signal), {cmd: 'dump'}
// (write the log now: the process is about to be killed), {cmd: 'finish'} (wait for every socket
// to be disconnected, write the log, exit).

const path = require('path');
const { fork } = require('child_process');
const { Recorder } = require('./lib/record');
const { args, pattern, once, sleep } = require('./lib/common');

const opt = args(process.argv.slice(2));
const flavour = opt.flavour || 'v4';
const rec = new Recorder('client', flavour);
const io = flavour === 'v4' ? require('socket.io-client').io : require('socket.io-client-v2');
const msgpack = opt.msgpack ? require('socket.io-msgpack-parser') : null;
if (msgpack) rec.useParser(msgpack);
const URL = `http://127.0.0.1:${opt.port}`;
const RESERVED = new Set(['connect', 'connect_error', 'connect_timeout', 'connecting', 'disconnect', 'error',
  'reconnect', 'reconnect_attempt', 'reconnect_failed', 'reconnect_error', 'reconnecting', 'ping', 'pong']);

const sockets = []; // every socket this process opened

// A new socket on namespace `nsp` (on `manager` if given, multiplexed on its connection), with
// what the application sees logged per socket: connect (socket id, recovered), events (with the
// last argument when it is a string: the recovery offset), disconnect (reason).
function open(nsp, options, label, manager = null) {
  if (msgpack) options = { parser: msgpack, ...options };
  const socket = manager ? manager.socket(nsp, options) : io(URL + nsp, options);
  manager = socket.io;
  if (!manager.__watched) {
    manager.__watched = true;
    if (flavour === 'v4') rec.watchManager(manager, label);
    else manager.__session = rec.watchClientEngine(manager.engine, label);
  }
  const eio = () => (manager.engine && manager.engine.id) || socket.__eio || null;
  // events: the live session (replayed events arrive before 'connect' on the new session);
  // disconnect: the session the socket was connected on
  const base = (live = true) => ({ label, namespace: nsp, eio_sid: live ? eio() : (socket.__eio || eio()),
    sio_sid: socket.__sio || null });
  const lastArg = (a) => (a.length > 1 && typeof a[a.length - 1] === 'string' ? a[a.length - 1] : null);
  if (flavour === 'v4') {
    socket.onAny((event, ...a) => rec.app('recv_event', { ...base(), event, last_arg: lastArg(a) }));
    socket.onAnyOutgoing((event) => rec.app('send_event', { ...base(), event }));
  } else {
    const emit = socket.emit;
    socket.emit = function (event, ...a) {
      if (!RESERVED.has(event)) rec.app('send_event', { ...base(), event });
      return emit.call(this, event, ...a);
    };
    const onevent = socket.onevent;
    socket.onevent = function (packet) {
      rec.app('recv_event', { ...base(), event: packet.data[0], last_arg: lastArg(packet.data.slice(1)) });
      return onevent.call(this, packet);
    };
  }
  socket.on('connect', () => {
    socket.__eio = eio();
    socket.__sio = socket.id;
    socket.__connected = true;
    rec.app('connect', { ...base(), recovered: socket.recovered === undefined ? null : Boolean(socket.recovered),
      transport: manager.engine.transport.name });
  });
  socket.on(flavour === 'v4' ? 'connect_error' : 'error', (err) => rec.app('connect_error', { ...base(), message: err.message || String(err) }));
  socket.on('disconnect', (reason, description) => {
    socket.__connected = false;
    let desc = null;
    if (description) desc = description.message || description.description || (typeof description === 'string' ? description : null);
    if (desc && typeof desc !== 'string') desc = String(desc);
    rec.app('disconnect', { ...base(false), reason, description: desc });
  });
  socket.label = label;
  socket.eio = () => socket.__eio || eio();
  sockets.push(socket);
  return socket;
}

async function call(socket, event, ...a) {
  let res;
  if (flavour === 'v4') res = await socket.timeout(6000).emitWithAck(event, ...a);
  else {
    res = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ack for ${event}`)), 3000);
      socket.emit(event, ...a, (r) => { clearTimeout(t); resolve(r); });
    });
  }
  rec.app('ack_received', { label: socket.label, namespace: socket.nsp, eio_sid: socket.eio(), sio_sid: socket.__sio, event });
  return res;
}

function answer(socket, event, fn) {
  socket.on(event, (arg, cb) => {
    const res = fn(arg);
    rec.app('ack_sent', { label: socket.label, namespace: socket.nsp, eio_sid: socket.eio(), sio_sid: socket.__sio, event });
    cb(res);
  });
}

// The connection-level action (one per Engine.IO session; read by sio.py like the other scenarios)
function closeAction(socket, action) {
  rec.app('close_action', { label: socket.label, eio_sid: socket.eio(), action });
}

// Why a socket is going to end, as this script causes it: by client|server|network.
function endAction(socket, action, by) {
  rec.app('end_action', { label: socket.label, namespace: socket.nsp, eio_sid: socket.eio(), sio_sid: socket.__sio, action, by });
}

async function greet(socket) {
  socket.emit('hello', { name: socket.label });
  await once(socket, 'welcome');
  await call(socket, 'echo', `echo from ${socket.label}`);
}

// Wait until the server's 'disconnect' handlers have seen each of `sids` (socket ids); returns
// what they saw.
async function serverSaw(asker, sids, ms = 4000) {
  const t0 = Date.now();
  for (;;) {
    const seen = await call(asker, 'status');
    const got = sids.map((s) => seen.find((d) => d.sio_sid === s));
    if (got.every(Boolean)) return got;
    if (Date.now() - t0 > ms) throw new Error(`server never reported the end of ${sids}: ${JSON.stringify(seen)}`);
    await sleep(150);
  }
}

// ---- child processes -----------------------------------------------------------------------------
function logPath(label) {
  return path.join(path.dirname(opt.log), `client-${label}.json`);
}

function spawnChild(label, spec) {
  const argv = ['--child', label, '--flavour', flavour, '--port', opt.port, '--log', logPath(label), '--scenario', opt.scenario];
  if (opt.msgpack) argv.push('--msgpack');
  const proc = fork(__filename, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies = [];
  const waiters = [];
  proc.on('message', (m) => {
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else replies.push(m);
  });
  const wait = (type, ms = 5000) => new Promise((resolve, reject) => {
    const i = replies.findIndex((m) => m.type === type);
    if (i >= 0) return resolve(replies.splice(i, 1)[0]);
    const t = setTimeout(() => reject(new Error(`child ${label}: no ${type}`)), ms);
    waiters.push({ type, resolve: (m) => { clearTimeout(t); resolve(m); } });
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const child = {
    label, proc, wait, exited,
    async open() { proc.send({ cmd: 'open', spec }); child.info = await wait('connected'); return child.info; },
    async note(action, by) { proc.send({ cmd: 'note', action, by }); await wait('noted'); },
    async dump() { proc.send({ cmd: 'dump' }); await wait('dumped'); },
    signal(sig) { rec.app('signal', { label, pid: proc.pid, signal: sig }); proc.kill(sig); },
    async finish() { proc.send({ cmd: 'finish' }); return exited; },
  };
  return child;
}

async function childMain() {
  const label = opt.child;
  let mine = [];
  process.on('message', async (m) => {
    try {
      if (m.cmd === 'open') {
        const s = open(m.spec.nsp || '/', { reconnection: false, forceNew: true, ...m.spec.options }, label);
        await once(s, 'connect', 5000);
        await greet(s);
        mine = [s];
        process.send({ type: 'connected', sockets: mine.map((x) => ({ namespace: x.nsp, sio_sid: x.id, eio_sid: x.eio() })) });
      } else if (m.cmd === 'note') {
        for (const s of mine) endAction(s, m.action, m.by);
        if (m.action === 'sigkill') for (const s of mine) closeAction(s, 'sigkill');
        if (m.action === 'frozen') for (const s of mine) closeAction(s, 'frozen');
        process.send({ type: 'noted' });
      } else if (m.cmd === 'dump') {
        rec.extra.killed_after_dump = true;
        finishExtra();
        rec.dump(opt.log);
        process.send({ type: 'dumped' });
      } else if (m.cmd === 'finish') {
        const t0 = Date.now();
        while (mine.some((s) => s.__connected) && Date.now() - t0 < 4000) await sleep(50);
        await sleep(200);
        finishExtra();
        rec.dump(opt.log);
        process.exit(0);
      }
    } catch (e) {
      console.error(`child ${label} failed:`, e);
      finishExtra();
      rec.dump(opt.log);
      process.exit(1);
    }
  });
}

function finishExtra() {
  const pkg = flavour === 'v4' ? 'socket.io-client' : 'socket.io-client-v2';
  rec.extra.peer = `socket.io-client ${require(`${pkg}/package.json`).version} (node ${process.version})` +
    (msgpack ? `, socket.io-msgpack-parser ${require('socket.io-msgpack-parser/package.json').version}` : '');
  rec.extra.scenario = opt.scenario;
  rec.extra.pid = process.pid;
  if (opt.child) rec.extra.child = opt.child;
}

// ---- scenarios -----------------------------------------------------------------------------------
const WS = { transports: ['websocket'], reconnection: false, forceNew: true };

const scenarios = {
  // H stays healthy (answers pings every 300 ms); Z (WebSocket) and P (polling) run in child
  // processes that get SIGSTOPped past pingInterval + pingTimeout: the server closes them with
  // "ping timeout". Then they are SIGCONTed, see their end, write their logs and exit.
  async sio4_ping_timeout() {
    const H = open('/', WS, 'H');
    await once(H, 'connect');
    await greet(H);
    const Z = spawnChild('Z', { options: { transports: ['websocket'] } });
    const P = spawnChild('P', { options: { transports: ['polling'] } });
    await Z.open();
    await P.open();
    await sleep(700); // a couple of ping/pong exchanges on every connection
    for (const c of [Z, P]) await c.note('frozen', 'server');
    Z.signal('SIGSTOP');
    P.signal('SIGSTOP');
    const frozen = Date.now();
    // H keeps talking while the others are frozen
    const saw = await serverSaw(H, [Z.info.sockets[0].sio_sid, P.info.sockets[0].sio_sid], 5000);
    rec.app('note', { label: 'H', text: `server ended the frozen sockets after ${Date.now() - frozen} ms: ${saw.map((d) => d.reason)}` });
    await call(H, 'echo', 'still here');
    await sleep(300);
    Z.signal('SIGCONT');
    P.signal('SIGCONT');
    const ends = await Promise.all([Z.finish(), P.finish()]);
    if (ends.some((e) => e.code !== 0)) throw new Error(`children exited ${JSON.stringify(ends)}`);
    await call(H, 'echo', 'bye');
    endAction(H, 'client_disconnect', 'client');
    closeAction(H, 'disconnect');
    H.disconnect();
    await sleep(150);
  },

  // Sockets ending every way the server can name:
  //   A /chat: client namespace disconnect, A / stays until the server shuts down;
  //   B: client disconnect; C: server socket.disconnect(); D: child process SIGKILLed;
  //   E: TCP reset; F (polling only) and A /: io.close() ("server shutting down").
  async sio4_disconnects() {
    const A = open('/', WS, 'A');
    await once(A, 'connect');
    await greet(A);
    const chat = open('/chat', {}, 'A', A.io);
    await once(chat, 'connect');
    await call(chat, 'echo', 'hello chat');
    const B = open('/', WS, 'B');
    const C = open('/', WS, 'C');
    const E = open('/', WS, 'E');
    const F = open('/', { transports: ['polling'], reconnection: false, forceNew: true }, 'F');
    await Promise.all([B, C, E, F].map((s) => once(s, 'connect')));
    for (const s of [B, C, E, F]) await greet(s);
    const D = spawnChild('D', { options: { transports: ['websocket'] } });
    await D.open();
    await sleep(1100); // a ping on every connection (pingInterval 1000 ms)

    // A leaves /chat, keeps /
    endAction(chat, 'client_namespace_disconnect', 'client');
    chat.disconnect();
    await sleep(100);
    await call(A, 'echo', 'still on /');

    // B: the client disconnects (its only namespace: the connection closes too)
    endAction(B, 'client_disconnect', 'client');
    closeAction(B, 'disconnect');
    B.disconnect();
    await sleep(100);

    // C: the server disconnects it
    endAction(C, 'server_disconnect', 'server');
    closeAction(C, 'server_disconnect');
    const cGone = once(C, 'disconnect');
    C.emit('kick me');
    await cGone;
    await sleep(100);

    // D: the client process is killed
    await D.note('sigkill', 'network');
    await D.dump();
    D.signal('SIGKILL');
    const dEnd = await D.exited;
    rec.app('note', { label: 'D', text: `child exited ${JSON.stringify(dEnd)}` });

    // E: TCP reset
    endAction(E, 'tcp_reset', 'network');
    closeAction(E, 'tcp_reset');
    E.io.engine.transport.ws._socket.resetAndDestroy();
    await serverSaw(A, [D.info.sockets[0].sio_sid, E.__sio]);
    await sleep(100);

    // A / and F: the server shuts down
    for (const s of [A, F]) { endAction(s, 'server_shutdown', 'server'); closeAction(s, 'server_shutdown'); }
    const gone = Promise.all([once(A, 'disconnect'), once(F, 'disconnect', 5000)]);
    A.emit('shutdown');
    await gone;
    await sleep(300);
  },

  // connectionStateRecovery (maxDisconnectionDuration 1000 ms). R1's TCP connection is cut
  // (destroy: FIN, no goodbye); it reconnects after 300 ms: recovered, same socket id, and the server
  // re-sends what it emitted to R1's rooms while R1 was away. R2 is cut the same way but reconnects
  // after 1500 ms: not recovered, a new socket id.
  async sio4_recovery() {
    const recon = (delay) => ({ transports: ['websocket'], forceNew: true, reconnection: true, reconnectionAttempts: 3,
      reconnectionDelay: delay, reconnectionDelayMax: delay, randomizationFactor: 0 });
    for (const [label, delay] of [['R1', 300], ['R2', 1500]]) {
      const R = open('/', recon(delay), label);
      await once(R, 'connect');
      await call(R, 'join', 'room1');
      await greet(R); // 'welcome' carries an offset: the client now has one to send back
      const firstId = R.id;
      const back = new Promise((resolve) => R.once('disconnect', () => R.once('connect', resolve)));
      endAction(R, 'transport_cut', 'network');
      closeAction(R, 'transport_cut');
      R.io.engine.transport.ws._socket.destroy();
      await Promise.race([back, sleep(4000).then(() => { throw new Error(`${label} did not reconnect`); })]);
      rec.app('note', { label, text: `reconnected: recovered=${R.recovered} id ${firstId} -> ${R.id}` });
      await sleep(200);
      await call(R, 'echo', `after reconnect (${label})`);
      endAction(R, 'client_disconnect', 'client');
      closeAction(R, 'disconnect');
      R.disconnect();
      await sleep(150);
    }
  },

  // K1..K4 (WebSocket), K1 and K2 in room1, K3 in room2:
  //   io.emit (all 4), io.to("room1").emit (K1, K2), socket.broadcast.emit from K3 (all but K3),
  //   one socket.emit per socket with the same event and different payloads (not a fan-out), and
  //   one per socket with the same event and payload 1.2 s apart (not a fan-out either).
  async sio4_broadcasts() {
    const K = ['K1', 'K2', 'K3', 'K4'].map((l) => open('/', WS, l));
    await Promise.all(K.map((s) => once(s, 'connect')));
    for (const s of K) await greet(s);
    await call(K[0], 'join', 'room1');
    await call(K[1], 'join', 'room1');
    await call(K[2], 'join', 'room2');
    const got = (sockets, event, ms = 3000) => Promise.all(sockets.map((s) => once(s, event, ms)));

    let w = got(K, 'news');
    K[0].emit('bc all');
    await w;
    await sleep(100);
    w = got([K[0], K[1]], 'room news');
    K[1].emit('bc room', 'room1');
    await w;
    await sleep(100);
    w = got([K[0], K[1], K[3]], 'others');
    K[2].emit('bc others');
    await w;
    await sleep(100);
    w = got(K, 'personal');
    K[3].emit('bc personal');
    await w;
    await sleep(100);
    w = got(K, 'digest', 8000);
    await call(K[0], 'bc spaced', 1200);
    await w;
    await sleep(100);
    for (const s of K) { endAction(s, 'client_disconnect', 'client'); closeAction(s, 'disconnect'); s.disconnect(); }
    await sleep(150);
  },

  // socket.io-msgpack-parser on both sides: every Socket.IO packet is one binary Engine.IO message.
  // A over WebSocket: events, acks both ways, binary data (no attachments with this parser), a
  // client disconnect. P over polling (binary as "b<base64>"): a few events, a server disconnect.
  async sio4_msgpack() {
    const A = open('/', WS, 'A');
    await once(A, 'connect');
    await greet(A);
    await call(A, 'echo', { nested: { list: [1, 2, 3], text: 'h\u00e9llo' } });
    await call(A, 'upload', pattern(1500, 1));
    await call(A, 'bin ack please', 256);
    A.emit('pair', { a: pattern(16, 2), b: pattern(32, 4) });
    await once(A, 'download');
    answer(A, 'server question', () => ({ a: 42 }));
    A.emit('ask me');
    await once(A, 'answer noted');
    const chat = open('/chat', {}, 'A', A.io);
    await once(chat, 'connect');
    await call(chat, 'echo', 'chat over msgpack');
    endAction(chat, 'client_namespace_disconnect', 'client');
    chat.disconnect();

    const P = open('/', { transports: ['polling'], reconnection: false, forceNew: true }, 'P');
    await once(P, 'connect');
    await greet(P);
    await call(P, 'upload', pattern(300, 6));
    endAction(P, 'server_disconnect', 'server');
    closeAction(P, 'server_disconnect');
    const pGone = once(P, 'disconnect');
    P.emit('kick me');
    await pGone;

    endAction(A, 'client_disconnect', 'client');
    closeAction(A, 'disconnect');
    A.disconnect();
    await sleep(150);
  },

  // socket.io 2 (Engine.IO 3: the client pings). H healthy; Z (WebSocket child) frozen past
  // pingInterval + pingTimeout: the server, which gets no ping, closes it with "ping timeout";
  // S: the server disconnects it (socket.disconnect(true)).
  async sio2_ping_timeout() {
    const H = open('/', WS, 'H');
    await once(H, 'connect');
    await greet(H);
    const S = open('/', WS, 'S');
    await once(S, 'connect');
    await greet(S);
    const Z = spawnChild('Z', { options: { transports: ['websocket'] } });
    await Z.open();
    await sleep(700);
    await Z.note('frozen', 'server');
    Z.signal('SIGSTOP');
    const frozen = Date.now();
    const saw = await serverSaw(H, [Z.info.sockets[0].sio_sid], 5000);
    rec.app('note', { label: 'H', text: `server ended the frozen socket after ${Date.now() - frozen} ms: ${saw.map((d) => d.reason)}` });
    await sleep(200);
    Z.signal('SIGCONT');
    const end = await Z.finish();
    if (end.code !== 0) throw new Error(`child exited ${JSON.stringify(end)}`);

    endAction(S, 'server_disconnect', 'server');
    closeAction(S, 'server_disconnect');
    const sGone = once(S, 'disconnect');
    S.emit('kick me');
    await sGone;
    await sleep(100);

    await call(H, 'echo', 'bye');
    endAction(H, 'client_disconnect', 'client');
    closeAction(H, 'disconnect');
    H.disconnect();
    await sleep(150);
  },
};

if (opt.child) {
  childMain();
} else {
  (async () => {
    try {
      await scenarios[opt.scenario]();
      finishExtra();
      rec.dump(opt.log);
      process.exit(0);
    } catch (e) {
      console.error('client failed:', e);
      finishExtra();
      rec.dump(opt.log);
      process.exit(1);
    }
  })();
}
