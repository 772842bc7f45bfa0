'use strict';
// socket.io 2 server (Engine.IO protocol 3, Socket.IO protocol 4) used by the sio2_* scenarios.
//   node sio2_server.js --port 9311 --log server.json [--ping-interval 500 --ping-timeout 1000]
//                       [--upgrade-delay 700]
// Namespaces: "/" and "/chat" (events, acks both ways, binary), "/admin" (middleware refuses).

const http = require('http');
const { Recorder } = require('./lib/record');
const { args, pattern, serveUntilQuit, delayUpgrades } = require('./lib/common');

const opt = args(process.argv.slice(2));
const rec = new Recorder('server', 'v2');
const SocketIO = require('socket.io-v2');

const httpServer = http.createServer();
const io = SocketIO(httpServer, {
  pingInterval: Number(opt['ping-interval'] || 25000),
  pingTimeout: Number(opt['ping-timeout'] || 5000),
});
rec.watchEngine(io.eio);
if (opt['upgrade-delay']) delayUpgrades(httpServer, Number(opt['upgrade-delay']));

const RESERVED = new Set(['error', 'connect', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

const disconnects = []; // what the 'disconnect' handlers saw (the 'status' event returns it)

// Application-level log (socket.io 2 has no onAny/onAnyOutgoing: wrap the socket's emit/onevent).
function track(nsp) {
  io.of(nsp).on('connection', (socket) => {
    const eio = socket.conn.id;
    rec.app('connection', {
      namespace: nsp, sio_sid: socket.id, eio_sid: eio,
      client_port: socket.request.socket.remotePort, transport: socket.conn.transport.name,
    });
    const emit = socket.emit;
    socket.emit = function (event, ...a) {
      if (!RESERVED.has(event)) rec.app('send_event', { namespace: nsp, eio_sid: eio, event });
      return emit.call(this, event, ...a);
    };
    const onevent = socket.onevent;
    socket.onevent = function (packet) {
      rec.app('recv_event', { namespace: nsp, eio_sid: eio, event: packet.data[0] });
      return onevent.call(this, packet);
    };
    socket.on('disconnect', (reason) => {
      disconnects.push({ namespace: nsp, eio_sid: eio, sio_sid: socket.id, reason, ts: Date.now() / 1000 });
      rec.app('disconnect', { namespace: nsp, eio_sid: eio, sio_sid: socket.id, reason });
    });
  });
}

function acked(socket, nsp, event, ack, ...res) {
  rec.app('ack_sent', { namespace: nsp, eio_sid: socket.conn.id, event, binary: res.some(Buffer.isBuffer) });
  ack(...res);
}

track('/');
io.on('connection', (socket) => {
  const sid = socket.conn.id;
  socket.on('hello', (msg) => socket.emit('welcome', { text: `welcome, ${msg.name}` }));
  socket.on('chat message', (text, ack) => acked(socket, '/', 'chat message', ack, { ok: true, echo: text }));
  socket.on('upload', (buf, ack) => acked(socket, '/', 'upload', ack, { received: buf.length }));
  socket.on('pair', () => socket.emit('download', { name: 'blob', data: pattern(2048, 3) }));
  socket.on('bin ack please', (n, ack) => acked(socket, '/', 'bin ack please', ack, pattern(Number(n), 9)));
  socket.on('ask me', () => {
    socket.emit('server question', { q: 'meaning?' }, (answer) => {
      rec.app('ack_received', { namespace: '/', eio_sid: sid, event: 'server question', args: answer });
      socket.emit('answer noted', answer);
    });
  });
  socket.on('ask binary', () => {
    socket.emit('need bytes', 512, (buf) => {
      rec.app('ack_received', { namespace: '/', eio_sid: sid, event: 'need bytes', binary: Buffer.isBuffer(buf), size: buf.length });
      socket.emit('bytes noted', buf.length);
    });
  });
  socket.on('burst', (n) => {
    for (let i = 0; i < n; i++) socket.emit('tick', i);
  });
  // used by sio2_ping_timeout (life_client.js)
  socket.on('echo', (x, ack) => acked(socket, '/', 'echo', ack, x));
  socket.on('status', (ack) => acked(socket, '/', 'status', ack, disconnects));
  socket.on('kick me', () => {
    rec.app('server_action', { namespace: '/', eio_sid: sid, sio_sid: socket.id, action: 'socket.disconnect(true)' });
    socket.disconnect(true);
  });
});

track('/chat');
io.of('/chat').on('connection', (socket) => {
  const sid = socket.conn.id;
  socket.emit('chat welcome', { room: 'lobby' }, (reply) => {
    rec.app('ack_received', { namespace: '/chat', eio_sid: sid, event: 'chat welcome', args: reply });
  });
  socket.on('chat message', (text, ack) => acked(socket, '/chat', 'chat message', ack, { ok: true, room: 'lobby', echo: text }));
});

track('/admin');
io.of('/admin').use((socket, next) => {
  rec.app('middleware_refused', { namespace: '/admin', eio_sid: socket.conn.id, error: 'not authorized' });
  next(new Error('not authorized'));
});

httpServer.listen(Number(opt.port), '127.0.0.1', () => {
  serveUntilQuit(async () => {
    await new Promise((r) => setTimeout(r, 200));
    rec.extra.peer = `socket.io ${require('socket.io-v2/package.json').version} (node ${process.version})`;
    rec.extra.options = { pingInterval: io.eio.pingInterval, pingTimeout: io.eio.pingTimeout };
    rec.dump(opt.log);
  });
});
