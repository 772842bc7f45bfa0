'use strict';
// socket.io 4 server for the socket-lifecycle scenarios (sio4_ping_timeout, sio4_disconnects,
// sio4_recovery, sio4_broadcasts, sio4_msgpack).
//   node sio4_life_server.js --port 9350 --log server.json [--ping-interval 300 --ping-timeout 200]
//                            [--recovery 1000] [--msgpack]
// --recovery MS: connectionStateRecovery with maxDisconnectionDuration MS.
// --msgpack:     socket.io-msgpack-parser instead of the default parser.
// Namespaces "/" and "/chat". The clients drive it with events (see the handlers below).

const http = require('http');
const { Recorder } = require('./lib/record');
const { args, pattern, serveUntilQuit } = require('./lib/common');

const opt = args(process.argv.slice(2));
const rec = new Recorder('server', 'v4');
const { Server } = require('socket.io');

const options = {
  pingInterval: Number(opt['ping-interval'] || 25000),
  pingTimeout: Number(opt['ping-timeout'] || 20000),
};
if (opt.recovery) {
  options.connectionStateRecovery = { maxDisconnectionDuration: Number(opt.recovery), skipMiddlewares: true };
}
if (opt.msgpack) {
  options.parser = require('socket.io-msgpack-parser');
  rec.useParser(options.parser);
}
const httpServer = http.createServer();
const io = new Server(httpServer, options);
rec.watchEngine(io.engine);

const disconnects = []; // what the 'disconnect' handlers saw, for the clients' 'status' requests

// Every packet that goes through the namespace's adapter (io.emit, io.to(..).emit,
// socket.broadcast.emit; with connection-state recovery also socket.emit): log the rooms, the
// sockets it reaches now, and the offset recovery appended to the arguments (if any).
function watchAdapter(nsp) {
  const adapter = io.of(nsp).adapter;
  const orig = adapter.broadcast;
  adapter.broadcast = function (packet, opts) {
    const reached = [];
    this.apply(opts, (s) => reached.push(s.id));
    const ret = orig.call(this, packet, opts);
    const isEvent = packet.type === 2 && Array.isArray(packet.data);
    const last = isEvent ? packet.data[packet.data.length - 1] : undefined;
    rec.app('adapter_broadcast', {
      namespace: nsp, event: isEvent ? packet.data[0] : null, ack: packet.id !== undefined,
      rooms: [...opts.rooms], except: [...(opts.except || [])], reached,
      offset: opts && options.connectionStateRecovery && isEvent && typeof last === 'string' ? last : null,
    });
    return ret;
  };
}

function track(nsp) {
  watchAdapter(nsp);
  io.of(nsp).on('connection', (socket) => {
    const eio = socket.conn.id;
    rec.app('connection', {
      namespace: nsp, sio_sid: socket.id, eio_sid: eio, recovered: socket.recovered,
      pid: socket.pid === undefined ? null : socket.pid,
      client_port: socket.request.socket.remotePort, transport: socket.conn.transport.name,
      auth: socket.handshake.auth, rooms: [...socket.rooms],
    });
    socket.onAny((event) => rec.app('recv_event', { namespace: nsp, eio_sid: eio, sio_sid: socket.id, event }));
    socket.onAnyOutgoing((event) => rec.app('send_event', { namespace: nsp, eio_sid: eio, sio_sid: socket.id, event }));
    socket.on('disconnect', (reason, description) => {
      const d = { namespace: nsp, eio_sid: eio, sio_sid: socket.id, reason, ts: Date.now() / 1000 };
      disconnects.push(d);
      rec.app('disconnect', { namespace: nsp, eio_sid: eio, sio_sid: socket.id, reason,
        description: description && description.message ? description.message : (description ? String(description) : null) });
      if (opt.recovery && nsp === '/' && reason === 'transport close') gapEmits(socket.id);
    });
  });
}

// Connection-state recovery: while a socket is away, emit to a room it was in and to its own id.
// The adapter stores these packets; a recovered socket gets them again.
function gapEmits(sid) {
  const plan = [['room news', 'room1'], ['room news', 'room1'], ['direct', sid], ['room news', 'room1']];
  plan.forEach(([event, room], i) => setTimeout(() => {
    rec.app('gap_emit', { namespace: '/', event, room, for_sio_sid: sid, n: i });
    io.to(room).emit(event, { n: i, for: sid });
  }, 20 + 30 * i));
}

function acked(socket, nsp, event, ack, ...res) {
  rec.app('ack_sent', { namespace: nsp, eio_sid: socket.conn.id, sio_sid: socket.id, event });
  ack(...res);
}

track('/');
track('/chat');

io.on('connection', (socket) => {
  socket.on('hello', (msg) => socket.emit('welcome', { text: `welcome, ${msg.name}` }));
  socket.on('echo', (x, ack) => acked(socket, '/', 'echo', ack, x));
  socket.on('join', (room, ack) => { socket.join(room); acked(socket, '/', 'join', ack, [...socket.rooms]); });
  // a namespace disconnect from the server: DISCONNECT packet, reason "server namespace disconnect"
  socket.on('kick me', () => {
    rec.app('server_action', { namespace: '/', eio_sid: socket.conn.id, sio_sid: socket.id, action: 'socket.disconnect()' });
    socket.disconnect();
  });
  // the disconnect reasons the server has seen so far
  socket.on('status', (ack) => acked(socket, '/', 'status', ack, disconnects));
  // io.close(): every socket left ends with "server shutting down"
  socket.on('shutdown', () => {
    setTimeout(() => {
      rec.app('server_action', { namespace: '/', action: 'io.close()', sockets: io.of('/').sockets.size + io.of('/chat').sockets.size });
      io.close();
    }, 20);
  });

  // ---- broadcasts (sio4_broadcasts) ---------------------------------------------------------------
  const bcast = (call, event, payload, fn) => {
    const target = call;
    rec.app('broadcast_call', { namespace: '/', call: target, event, from_sio_sid: socket.id, payload_json: JSON.stringify(payload) });
    fn();
  };
  socket.on('bc all', () => {
    const payload = { text: 'to everyone', n: 1 };
    bcast('io.emit', 'news', payload, () => io.emit('news', payload));
  });
  socket.on('bc room', (room) => {
    const payload = { text: `to ${room}`, n: 2 };
    bcast(`io.to("${room}").emit`, 'room news', payload, () => io.to(room).emit('room news', payload));
  });
  socket.on('bc others', () => {
    const payload = { text: 'to everyone but the sender', n: 3 };
    bcast('socket.broadcast.emit', 'others', payload, () => socket.broadcast.emit('others', payload));
  });
  // the same event to every socket, one socket.emit each, each with its own payload: not a fan-out
  socket.on('bc personal', () => {
    const ids = [...io.of('/').sockets.keys()];
    rec.app('broadcast_call', { namespace: '/', call: 'socket.emit per socket, different payloads', event: 'personal',
      from_sio_sid: socket.id, intended: ids });
    for (const [i, s] of [...io.of('/').sockets.values()].entries()) s.emit('personal', { to: s.id, n: i, pad: 'x'.repeat(i) });
  });
  // the same event and payload to every socket, 1.2 s apart: not a fan-out either
  socket.on('bc spaced', (gapMs, ack) => {
    const sockets = [...io.of('/').sockets.values()];
    const payload = { text: 'same payload, spaced out', n: 4 };
    rec.app('broadcast_call', { namespace: '/', call: `socket.emit per socket, same payload, ${gapMs} ms apart`,
      event: 'digest', from_sio_sid: socket.id, intended: sockets.map((s) => s.id), payload_json: JSON.stringify(payload) });
    sockets.forEach((s, i) => setTimeout(() => {
      s.emit('digest', payload);
      if (i === sockets.length - 1) acked(socket, '/', 'bc spaced', ack, sockets.length);
    }, i * Number(gapMs)));
  });

  // ---- msgpack (sio4_msgpack) --------------------------------------------------------------------
  socket.on('upload', (buf, ack) => acked(socket, '/', 'upload', ack, { received: buf.length }));
  socket.on('bin ack please', (n, ack) => acked(socket, '/', 'bin ack please', ack, pattern(Number(n), 9)));
  socket.on('ask me', async () => {
    const answer = await socket.timeout(2000).emitWithAck('server question', { q: 'meaning?' });
    rec.app('ack_received', { namespace: '/', eio_sid: socket.conn.id, sio_sid: socket.id, event: 'server question' });
    socket.emit('answer noted', answer);
  });
  socket.on('pair', () => socket.emit('download', { name: 'blob', data: pattern(2048, 3) }));
});

io.of('/chat').on('connection', (socket) => {
  socket.on('echo', (x, ack) => acked(socket, '/chat', 'echo', ack, x));
});

httpServer.listen(Number(opt.port), '127.0.0.1', () => {
  serveUntilQuit(async () => {
    await new Promise((r) => setTimeout(r, 200));
    rec.extra.peer = `socket.io ${require('socket.io/package.json').version} (node ${process.version})` +
      (opt.msgpack ? `, socket.io-msgpack-parser ${require('socket.io-msgpack-parser/package.json').version}` : '');
    rec.extra.options = { pingInterval: io.engine.opts.pingInterval, pingTimeout: io.engine.opts.pingTimeout };
    if (opt.recovery) rec.extra.options.connectionStateRecovery = { maxDisconnectionDuration: Number(opt.recovery) };
    if (opt.msgpack) rec.extra.options.parser = 'socket.io-msgpack-parser';
    rec.dump(opt.log);
  });
});
