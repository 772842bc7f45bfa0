'use strict';
// socket.io 4 over https (TLS 1.3, HTTP/1.1 only: ALPN http/1.1) for the tls13_chromium_sio4
// scenario, whose client is a real browser (headless Chromium) running chromium_page.html.
//   node chromium_sio4_server.js --port 9450 --log-port 9451 --log server.json --client-log client.json
//                                --cert DIR [--ping-interval 300 --ping-timeout 1000 --upgrade-delay 600]
// https://dissect.test:PORT/ serves the page, /socket.io/socket.io.min.js the client bundle (socket.io's
// serveClient). http://127.0.0.1:LOG_PORT/ (plain HTTP, not captured) serves a launcher page that
// navigates to the https page, and takes the page's own log (POST /log): that log is turned into the
// client log ../sio/lib/record.js writes for node clients (lib/browserlog.js); then "LOGGED" is
// printed on stdout.
// Server logs: Engine.IO/Socket.IO with ../sio/lib/record.js (unchanged), TLS per connection with
// lib/tlslog.js, and, for every TCP connection the browser opened, its client port, when it opened
// and closed, whether its TLS handshake completed, and the HTTP requests it carried ("tcp", "http").

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const { TlsLog, requireRelocated, now } = require('./lib/tlslog');
const { browserClientLog } = require('./lib/browserlog');
const { args, pattern, serveUntilQuit, delayUpgrades } = require('../sio/lib/common');

const { Recorder } = requireRelocated('../../sio/lib/record.js');
const opt = args(process.argv.slice(2));
const rec = new Recorder('server', 'v4');
const tlslog = new TlsLog('server');
const { Server } = require('socket.io');

const PAGE = fs.readFileSync(path.join(__dirname, 'chromium_page.html'));
const tcp = []; // every TCP connection accepted, in order
const httpLog = []; // every HTTP request (and WebSocket upgrade request) the server handled

const httpsServer = https.createServer({
  key: fs.readFileSync(path.join(opt.cert, 'key.pem')),
  cert: fs.readFileSync(path.join(opt.cert, 'cert.pem')),
  minVersion: 'TLSv1.3',
  ALPNProtocols: ['http/1.1'], // HTTP/1.1 only (Chromium offers h2 and http/1.1)
}, (req, res) => {
  const url = new URL(req.url, 'https://dissect.test');
  if (req.method === 'GET' && url.pathname === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(PAGE);
  } else if (!url.pathname.startsWith('/socket.io/')) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
  }
});
httpsServer.on('connection', (sock) => {
  const c = { client_ip: sock.remoteAddress, client_port: sock.remotePort, t_open: now(), t_close: null,
              tls_established: false, tls_error: null, bytes_read: 0, bytes_written: 0 };
  tcp.push(c);
  sock.once('close', () => { c.t_close = now(); c.bytes_read = sock.bytesRead; c.bytes_written = sock.bytesWritten; });
});
httpsServer.on('secureConnection', (sock) => {
  const c = tcp.find((x) => x.client_port === sock.remotePort && x.client_ip === sock.remoteAddress);
  if (c) c.tls_established = true;
});
httpsServer.on('tlsClientError', (err, sock) => {
  const c = tcp.find((x) => x.client_port === sock.remotePort);
  if (c) c.tls_error = err.code || err.message;
});
tlslog.watchServer(httpsServer);

const io = new Server(httpsServer, {
  pingInterval: Number(opt['ping-interval'] || 25000),
  pingTimeout: Number(opt['ping-timeout'] || 20000),
  serveClient: true,
});
rec.watchEngine(io.engine);
if (opt['upgrade-delay']) delayUpgrades(httpsServer, Number(opt['upgrade-delay']));

// every request, before socket.io's own listener (engine.io installs its listener when attached and
// calls the earlier ones behind it; this one is prepended afterwards): the response's status and its
// body_bytes, the bytes of the body the server handed to HTTP (after any Content-Encoding: gzip,
// before chunked framing), counted in res.write / res.end
httpsServer.prependListener('request', (req, res) => {
  const row = { ts: now(), client_port: req.socket.remotePort, method: req.method, target: req.url,
                http_version: req.httpVersion, status: null, body_bytes: 0, content_encoding: null };
  httpLog.push(row);
  const count = (chunk, enc) => {
    if (chunk && typeof chunk !== 'function') row.body_bytes += Buffer.byteLength(chunk, typeof enc === 'string' ? enc : undefined);
  };
  const { write, end } = res;
  res.write = function (chunk, enc, ...rest) { count(chunk, enc); return write.call(this, chunk, enc, ...rest); };
  res.end = function (chunk, enc, ...rest) { count(chunk, enc); return end.call(this, chunk, enc, ...rest); };
  res.once('finish', () => {
    row.status = res.statusCode;
    const head = typeof res._header === 'string' ? res._header : ''; // the header block node wrote
    const ce = /\r\ncontent-encoding: *([^\r]*)/i.exec(head);
    row.content_encoding = ce ? ce[1] : null;
  });
});
httpsServer.prependListener('upgrade', (req) => {
  httpLog.push({ ts: now(), client_port: req.socket.remotePort, method: req.method, target: req.url,
                 http_version: req.httpVersion, status: null, body_bytes: 0, upgrade: req.headers.upgrade || null });
});

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

// plain HTTP on another port (not captured): the launcher page and the page's log
const pageUrl = `https://dissect.test:${opt.port}/?log=${encodeURIComponent(`http://127.0.0.1:${opt['log-port']}/log`)}`;
const logServer = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><link rel="icon" href="data:,"><script>location.replace(${JSON.stringify(pageUrl)})</script>`);
    return;
  }
  if (req.method === 'POST' && req.url === '/log') {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      res.writeHead(204, { 'Access-Control-Allow-Origin': '*' });
      res.end();
      const page = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      fs.writeFileSync(`${opt['client-log']}.page.json`, JSON.stringify(page, null, 1));
      browserClientLog(page, requireRelocated, opt['client-log']);
      console.log('LOGGED');
    });
    return;
  }
  res.writeHead(404);
  res.end();
});

httpsServer.listen(Number(opt.port), '127.0.0.1', () => {
  logServer.listen(Number(opt['log-port']), '127.0.0.1', () => {
    serveUntilQuit(async () => {
      await new Promise((r) => setTimeout(r, 200));
      rec.extra.peer = `socket.io ${require('socket.io/package.json').version} (node ${process.version}, OpenSSL ${process.versions.openssl})`;
      rec.extra.options = { pingInterval: io.engine.opts.pingInterval, pingTimeout: io.engine.opts.pingTimeout };
      rec.extra.tls = tlslog.dump();
      rec.extra.tcp = tcp;
      rec.extra.http = httpLog;
      rec.dump(opt.log);
    });
  });
});
