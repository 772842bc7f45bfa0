'use strict';
// socket.io 4 server used by the sio4_* scenarios.
//   node sio4_server.js --port 9301 --log server.json [--ping-interval 300 --ping-timeout 1000]
//                       [--upgrade-delay 400]
// Namespaces: "/" and "/chat" (events, acks both ways, binary), "/admin" (middleware refuses
// everyone), "/auth" (middleware checks handshake.auth.token).

const http = require('http');
const { Recorder } = require('./lib/record');
const { args, pattern, serveUntilQuit, delayUpgrades } = require('./lib/common');

const opt = args(process.argv.slice(2));
const rec = new Recorder('server', 'v4');
const { Server } = require('socket.io');

const httpServer = http.createServer();
const io = new Server(httpServer, {
  pingInterval: Number(opt['ping-interval'] || 25000),
  pingTimeout: Number(opt['ping-timeout'] || 20000),
});
rec.watchEngine(io.engine);
if (opt['upgrade-delay']) delayUpgrades(httpServer, Number(opt['upgrade-delay']));

// Application-level log: what the handlers saw.
function track(nsp) {
  io.of(nsp).on('connection', (socket) => {
    rec.app('connection', {
      namespace: nsp, sio_sid: socket.id, eio_sid: socket.conn.id,
      client_port: socket.request.socket.remotePort, transport: socket.conn.transport.name,
      auth: socket.handshake.auth,
    });
    socket.onAny((event) => rec.app('recv_event', { namespace: nsp, eio_sid: socket.conn.id, event }));
    socket.onAnyOutgoing((event) => rec.app('send_event', { namespace: nsp, eio_sid: socket.conn.id, event }));
    socket.on('disconnect', (reason) => rec.app('disconnect', { namespace: nsp, eio_sid: socket.conn.id, reason }));
  });
}

function ackLogger(socket, nsp, event) {
  return (...res) => rec.app('ack_sent', { namespace: nsp, eio_sid: socket.conn.id, event, binary: res.some(Buffer.isBuffer) });
}

// ---- "/" ----------------------------------------------------------------------------------------
track('/');
io.on('connection', (socket) => {
  const sid = socket.conn.id;
  socket.on('hello', (msg) => socket.emit('welcome', { text: `welcome, ${msg.name}` }));

  socket.on('chat message', (text, ack) => {
    ackLogger(socket, '/', 'chat message')();
    ack({ ok: true, echo: text });
  });

  socket.on('upload', (buf, ack) => {
    ackLogger(socket, '/', 'upload')();
    ack({ received: buf.length });
  });

  // two binary attachments, no ack; answer with one binary event
  socket.on('pair', (obj) => socket.emit('download', { name: 'blob', data: pattern(2048, 3) }));

  // ack carrying a Buffer (BINARY_ACK s2c)
  socket.on('bin ack please', (n, ack) => {
    ackLogger(socket, '/', 'bin ack please')(Buffer.alloc(0));
    ack(pattern(Number(n), 9));
  });

  // server emits with an ack, both styles
  socket.on('ask me', async () => {
    const answer = await socket.timeout(2000).emitWithAck('server question', { q: 'meaning?' });
    rec.app('ack_received', { namespace: '/', eio_sid: sid, event: 'server question', args: answer });
    socket.emit('answer noted', answer);
  });
  socket.on('ask binary', () => {
    socket.emit('need bytes', 512, (buf) => {
      rec.app('ack_received', { namespace: '/', eio_sid: sid, event: 'need bytes', binary: Buffer.isBuffer(buf), size: buf.length });
      socket.emit('bytes noted', buf.length);
    });
  });

  socket.on('broadcast me', (text) => {
    rec.app('broadcast', { namespace: '/', event: 'news', recipients: io.of('/').sockets.size });
    io.emit('news', { from: sid, text });
  });

  // several s2c packets at once (on polling they share one response payload)
  socket.on('burst', (n) => {
    for (let i = 0; i < n; i++) socket.emit('tick', i);
  });

  socket.on('kick me', () => socket.disconnect(true));
});

// ---- "/chat" ------------------------------------------------------------------------------------
track('/chat');
io.of('/chat').on('connection', (socket) => {
  const sid = socket.conn.id;
  socket.emit('chat welcome', { room: 'lobby' }, (reply) => {
    rec.app('ack_received', { namespace: '/chat', eio_sid: sid, event: 'chat welcome', args: reply });
  });
  socket.on('chat message', (text, ack) => {
    ackLogger(socket, '/chat', 'chat message')();
    ack({ ok: true, room: 'lobby', echo: text });
  });
  socket.on('chat binary', (buf, ack) => {
    ackLogger(socket, '/chat', 'chat binary')();
    ack(buf.length);
  });
});

// ---- "/admin": refused by middleware ------------------------------------------------------------
track('/admin');
io.of('/admin').use((socket, next) => {
  rec.app('middleware_refused', { namespace: '/admin', eio_sid: socket.conn.id, error: 'not authorized' });
  next(new Error('not authorized'));
});

// ---- "/auth": token checked by middleware -------------------------------------------------------
track('/auth');
io.of('/auth').use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (token === 'secret-token-123') return next();
  const err = new Error('invalid token');
  err.data = { reason: 'token rejected', code: 4011 };
  rec.app('middleware_refused', { namespace: '/auth', eio_sid: socket.conn.id, error: 'invalid token' });
  next(err);
});
io.of('/auth').on('connection', (socket) => {
  socket.on('whoami', (ack) => {
    ackLogger(socket, '/auth', 'whoami')();
    ack({ user: 'alice', token: socket.handshake.auth.token });
  });
  socket.on('kick me', () => socket.disconnect(true));
});

httpServer.listen(Number(opt.port), '127.0.0.1', () => {
  serveUntilQuit(async () => {
    await new Promise((r) => setTimeout(r, 200));
    rec.extra.peer = `socket.io ${require('socket.io/package.json').version} (node ${process.version})`;
    rec.extra.options = { pingInterval: io.engine.opts.pingInterval, pingTimeout: io.engine.opts.pingTimeout };
    rec.dump(opt.log);
  });
});
