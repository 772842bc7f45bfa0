'use strict';
// socket.io 4 server over https (TLS) for the tls13_sio4_* / tls_nokeys scenarios.
//   node sio4_tls_server.js --port 9401 --log server.json --cert DIR [--ciphers TLS_...]
//                           [--ping-interval 300 --ping-timeout 1000 --upgrade-delay 600]
// Namespaces "/" and "/chat" (events, acks both ways, binary), as in ../sio/sio4_server.js.
// Logs: Engine.IO/Socket.IO packets with ../sio/lib/record.js (unchanged), TLS per connection with
// lib/tlslog.js (into the same JSON, key "tls").

const fs = require('fs');
const https = require('https');
const path = require('path');
const { TlsLog, requireRelocated } = require('./lib/tlslog');
const { args, pattern, serveUntilQuit, delayUpgrades } = require('../sio/lib/common');

const { Recorder } = requireRelocated('../../sio/lib/record.js');
const opt = args(process.argv.slice(2));
const rec = new Recorder('server', 'v4');
const tlslog = new TlsLog('server');
const { Server } = require('socket.io');

const tlsOptions = {
  key: fs.readFileSync(path.join(opt.cert, 'key.pem')),
  cert: fs.readFileSync(path.join(opt.cert, 'cert.pem')),
  minVersion: 'TLSv1.3',
};
if (opt.ciphers) tlsOptions.ciphers = opt.ciphers;
const httpsServer = https.createServer(tlsOptions);
tlslog.watchServer(httpsServer);
const io = new Server(httpsServer, {
  pingInterval: Number(opt['ping-interval'] || 25000),
  pingTimeout: Number(opt['ping-timeout'] || 20000),
});
rec.watchEngine(io.engine);
if (opt['upgrade-delay']) delayUpgrades(httpsServer, Number(opt['upgrade-delay']));

function track(nsp) {
  io.of(nsp).on('connection', (socket) => {
    rec.app('connection', {
      namespace: nsp, sio_sid: socket.id, eio_sid: socket.conn.id,
      client_port: socket.request.socket.remotePort, transport: socket.conn.transport.name,
    });
    socket.onAny((event) => rec.app('recv_event', { namespace: nsp, eio_sid: socket.conn.id, event }));
    socket.onAnyOutgoing((event) => rec.app('send_event', { namespace: nsp, eio_sid: socket.conn.id, event }));
    socket.on('disconnect', (reason) => rec.app('disconnect', { namespace: nsp, eio_sid: socket.conn.id, reason }));
  });
}
const acked = (socket, nsp, event, binary = false) =>
  rec.app('ack_sent', { namespace: nsp, eio_sid: socket.conn.id, event, binary });

track('/');
io.on('connection', (socket) => {
  const sid = socket.conn.id;
  socket.on('hello', (msg) => socket.emit('welcome', { text: `welcome, ${msg.name}` }));
  socket.on('chat message', (text, ack) => { acked(socket, '/', 'chat message'); ack({ ok: true, echo: text }); });
  socket.on('upload', (buf, ack) => { acked(socket, '/', 'upload'); ack({ received: buf.length }); });
  socket.on('bin ack please', (n, ack) => { acked(socket, '/', 'bin ack please', true); ack(pattern(Number(n), 9)); });
  socket.on('ask me', async () => {
    const answer = await socket.timeout(2000).emitWithAck('server question', { q: 'meaning?' });
    rec.app('ack_received', { namespace: '/', eio_sid: sid, event: 'server question', args: answer });
    socket.emit('answer noted', answer);
  });
  socket.on('burst', (n) => { for (let i = 0; i < n; i++) socket.emit('tick', i); });
});

track('/chat');
io.of('/chat').on('connection', (socket) => {
  const sid = socket.conn.id;
  socket.emit('chat welcome', { room: 'lobby' }, (reply) => {
    rec.app('ack_received', { namespace: '/chat', eio_sid: sid, event: 'chat welcome', args: reply });
  });
  socket.on('chat message', (text, ack) => { acked(socket, '/chat', 'chat message'); ack({ ok: true, room: 'lobby', echo: text }); });
  socket.on('chat binary', (buf, ack) => { acked(socket, '/chat', 'chat binary'); ack(buf.length); });
});

httpsServer.listen(Number(opt.port), '127.0.0.1', () => {
  serveUntilQuit(async () => {
    await new Promise((r) => setTimeout(r, 200));
    rec.extra.peer = `socket.io ${require('socket.io/package.json').version} (node ${process.version}, OpenSSL ${process.versions.openssl})`;
    rec.extra.options = { pingInterval: io.engine.opts.pingInterval, pingTimeout: io.engine.opts.pingTimeout };
    rec.extra.tls = tlslog.dump();
    rec.dump(opt.log);
  });
});
