'use strict';
// TLS side of the node peers' own logs (the counterpart of tlslog.py).
//
// Each peer records, per TLS connection, what its own TLS stack reports about it:
//   client_port / server_port     the TCP ports as this peer's socket reports them
//   version, cipher, cipher_openssl  tlsSocket.getProtocol(), getCipher().standardName / .name
//   alpn                          tlsSocket.alpnProtocol (null when none was negotiated)
//   session_reused                tlsSocket.isSessionReused()
//   sni                           server: tlsSocket.servername; client: the servername it sent
//   keylog                        the NSS key log lines node handed to this connection's 'keylog'
//                                 event (client: TLSSocket 'keylog'; server: Server 'keylog'),
//                                 i.e. the secrets of exactly this connection, in order
//   client_random                 the ClientHello random, read from those key log lines
// Clients: every tls.connect() of the process goes through wrapClient (https, ws and
// xmlhttprequest-ssl all call require('tls').connect), which also sets the fixed SNI and the CA.
// Nothing here reads the capture.

const fs = require('fs');
const path = require('path');
const Module = require('module');
const tls = require('tls');

const now = () => (performance.timeOrigin + performance.now()) / 1000; // epoch seconds

// Require a module file of another scenario directory unchanged, but as if it lived in this
// directory, so that its node_modules paths resolve to captures/make/tls/node_modules (used for
// ../../sio/lib/record.js and ../../ws/lib/peerlog.js).
function requireRelocated(file) {
  const src = path.resolve(__dirname, file);
  const fake = path.join(__dirname, `relocated.${path.basename(src)}`);
  const m = new Module(fake, module);
  m.filename = fake;
  m.paths = Module._nodeModulePaths(__dirname);
  m._compile(fs.readFileSync(src, 'utf8'), fake);
  return m.exports;
}

class TlsLog {
  constructor(role) {
    this.role = role; // 'server' | 'client'
    this.conns = [];
    this.bySocket = new WeakMap();
  }

  conn(sock) {
    let c = this.bySocket.get(sock);
    if (!c) {
      c = { t_start: now(), keylog: [] };
      this.bySocket.set(sock, c);
      this.conns.push(c);
    }
    return c;
  }

  note(sock, extra = {}) {
    const c = this.conn(sock);
    const cipher = sock.getCipher() || {};
    Object.assign(c, {
      t_secure: now(),
      client_ip: this.role === 'server' ? sock.remoteAddress : sock.localAddress,
      client_port: this.role === 'server' ? sock.remotePort : sock.localPort,
      server_ip: this.role === 'server' ? sock.localAddress : sock.remoteAddress,
      server_port: this.role === 'server' ? sock.localPort : sock.remotePort,
      version: sock.getProtocol(),
      cipher: cipher.standardName || null,
      cipher_openssl: cipher.name || null,
      alpn: sock.alpnProtocol || null,
      session_reused: sock.isSessionReused(),
    }, extra);
    if (this.role === 'client') {
      const ek = sock.getEphemeralKeyInfo();
      c.key_exchange = ek && ek.name ? `${ek.type} ${ek.name}` : null;
    }
    sock.once('close', () => { c.t_closed = now(); });
    return c;
  }

  // Server: call with the https / tls / http2 secure server before it listens.
  watchServer(server) {
    server.on('keylog', (line, sock) => this.conn(sock).keylog.push(line.toString('latin1').trim()));
    server.on('secureConnection', (sock) => this.note(sock, { sni: sock.servername || null }));
  }

  // Client: wrap tls.connect for the whole process. opts: { servername, ca, log: keylog lines on }
  wrapClient(opts) {
    const orig = tls.connect;
    const self = this;
    tls.connect = function (...args) {
      if (args.length !== 1 && !(args.length === 2 && typeof args[1] === 'function')) {
        throw new Error('tlslog: only tls.connect(options[, cb]) is instrumented');
      }
      const o = Object.assign({}, args[0]);
      o.servername = opts.servername;
      if (opts.ca) o.ca = opts.ca;
      if (opts.ciphers && !o.ciphers) o.ciphers = opts.ciphers;
      if (opts.maxVersion) o.maxVersion = opts.maxVersion;
      const sock = orig.call(tls, o, ...args.slice(1));
      const c = self.conn(sock);
      c.sni = o.servername;
      sock.on('keylog', (line) => c.keylog.push(line.toString('latin1').trim()));
      sock.once('secureConnect', () => self.note(sock));
      return sock;
    };
  }

  dump() {
    return this.conns.map((c) => {
      const first = c.keylog[0];
      return Object.assign({}, c, { client_random: first ? first.split(' ')[1] : null });
    });
  }
}

module.exports = { TlsLog, requireRelocated, now };
