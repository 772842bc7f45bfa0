'use strict';
// HTTP/2 server for tls_h2: node http2.createSecureServer (ALPN h2 only, TLS 1.3 by default).
//   node h2_server.js RAWDIR CERTDIR PORT     prints READY, serves until "quit" on stdin
// Logs every stream it answered (method, path, status, body bytes) and every TLS connection
// (lib/tlslog.js) into RAWDIR/server.json.
const fs = require('fs');
const http2 = require('http2');
const path = require('path');
const { TlsLog } = require('./lib/tlslog');
const { serveUntilQuit } = require('../sio/lib/common');

const [RAW, CERTS] = process.argv.slice(2, 4);
const PORT = Number(process.argv[4]);
const PAGE = Buffer.from(`<html><body>${'dissect HTTP/2 test page. '.repeat(60)}</body></html>\n`);
const ITEMS = Buffer.from(JSON.stringify({ items: Array.from({ length: 20 }, (_, i) => ({ id: i, name: `item ${i}` })) }));

const tlslog = new TlsLog('server');
const log = [];
const server = http2.createSecureServer({
  key: fs.readFileSync(path.join(CERTS, 'key.pem')),
  cert: fs.readFileSync(path.join(CERTS, 'cert.pem')),
});
tlslog.watchServer(server);

server.on('stream', (stream, headers) => {
  const t = Date.now() / 1000;
  const method = headers[':method'];
  const target = headers[':path'];
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => {
    const reqBody = Buffer.concat(chunks).length;
    let status = 200;
    let body;
    if (target === '/index.html') body = PAGE;
    else if (target === '/api/items') body = ITEMS;
    else if (method === 'POST' && target === '/submit') { status = 201; body = Buffer.from(JSON.stringify({ received: reqBody })); }
    else { status = 404; body = Buffer.from('{"error":"not found"}'); }
    stream.respond({ ':status': status, 'content-type': target === '/index.html' ? 'text/html' : 'application/json', 'content-length': body.length });
    stream.end(body);
    log.push({
      client_port: stream.session.socket.remotePort, method, target, status, content_length: body.length,
      body_bytes: body.length, request_body_bytes: reqBody, stream_id: stream.id, http_version: '2',
      authority: headers[':authority'], t_server: Math.round(t * 1e6) / 1e6,
    });
  });
});

server.listen(PORT, '127.0.0.1', () => {
  serveUntilQuit(async () => {
    await new Promise((r) => setTimeout(r, 100));
    fs.writeFileSync(path.join(RAW, 'server.json'), JSON.stringify({
      role: 'server', peer: `node ${process.version} http2 (OpenSSL ${process.versions.openssl})`,
      http: log, tls: tlslog.dump(),
    }, null, 1));
  });
});
