'use strict';
// Peer-side recorder for the node `ws` scenarios.
//
// Each side (server, client) keeps its own PeerLog. A ConnLog wraps one WebSocket and records, from
// inside the peer, everything it sends and receives:
//   sent / received   data messages (opcode, payload bytes before compression, fragments, text)
//   frames_sent       every frame the peer's framing layer wrote (hook on ws' Sender#sendFrame, so
//                     automatic pongs and close replies are included): fin, rsv1-3, opcode, mask,
//                     payload length on the wire (after compression), header length, close code
//   events            pings/pongs received through the public API ('ping', 'pong' events)
//   close_sent        the close the application asked for (ws.close(code, reason))
//   close_received    the code/reason of the 'close' event (1005 = no code, 1006 = no close frame)
//   bytes_written / bytes_read   the TCP socket's own byte counters, handshake included
// The logs are written as JSON and merged into a truth file by merge.py. Nothing here reads the
// capture.

const fs = require('fs');
const WS_VERSION = require('ws/package.json').version;

const OPNAMES = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };
const PEER = `ws ${WS_VERSION} (node ${process.version})`;

// Epoch milliseconds with sub-millisecond resolution (the peer's clock, for ordering only).
function now() {
  return performance.timeOrigin + performance.now();
}

function preview(text) {
  return Array.from(text).slice(0, 64).join('');
}

// Parse the frame that Sender.frame() built. `list` is [header] or [header, payload]; when ws
// masks a read-only buffer it merges header and masked payload into list[0].
function parseFrame(list) {
  const h = Buffer.isBuffer(list[0]) ? list[0] : Buffer.from(list[0]);
  const b0 = h[0];
  const b1 = h[1];
  const masked = (b1 & 0x80) !== 0;
  let len = b1 & 0x7f;
  let off = 2;
  if (len === 126) {
    len = h.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    len = Number(h.readBigUInt64BE(2));
    off = 10;
  }
  const maskKey = masked ? h.subarray(off, off + 4) : null;
  const headerLen = off + (masked ? 4 : 0);
  const frame = {
    t: now(),
    fin: (b0 & 0x80) !== 0,
    rsv1: (b0 & 0x40) !== 0,
    rsv2: (b0 & 0x20) !== 0,
    rsv3: (b0 & 0x10) !== 0,
    opcode: b0 & 0x0f,
    opcode_name: OPNAMES[b0 & 0x0f] || String(b0 & 0x0f),
    masked,
    payload_len: len,
    header_len: headerLen,
  };
  if (frame.opcode === 8 && len >= 2) {
    let payload = list.length > 1 ? list[1] : h.subarray(headerLen);
    payload = Buffer.from(payload); // copy (strings become buffers)
    if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= maskKey[i % 4];
    frame.close_code = payload.readUInt16BE(0);
    frame.close_reason = payload.subarray(2).toString('utf8');
  }
  return frame;
}

class ConnLog {
  constructor(role, ws, handshake) {
    this.role = role;
    this.ws = ws;
    const sock = ws._socket;
    this.rec = {
      t_open: now(),
      local_port: sock.localPort,
      remote_port: sock.remotePort,
      client_port: role === 'client' ? sock.localPort : sock.remotePort,
      server_port: role === 'client' ? sock.remotePort : sock.localPort,
      handshake: Object.assign(
        {
          subprotocol: ws.protocol || null,
          extensions_api: ws.extensions, // ws' own summary (extension names)
          deflate_params: ws._extensions['permessage-deflate']
            ? ws._extensions['permessage-deflate'].params
            : null,
        },
        handshake,
      ),
      sent: [],
      received: [],
      frames_sent: [],
      events: [],
      close_sent: null,
      close_received: null,
      bytes_written: null,
      bytes_read: null,
    };
    // Record every frame this peer writes, automatic ones included.
    const sender = ws._sender;
    const orig = sender.sendFrame.bind(sender);
    sender.sendFrame = (list, cb) => {
      this.rec.frames_sent.push(parseFrame(list));
      return orig(list, cb);
    };
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.rec.close_received = { t: now(), code, reason: reason.toString('utf8') };
        resolve();
      });
    });
    this.socketClosed = new Promise((resolve) => {
      sock.on('close', () => {
        this.rec.bytes_written = sock.bytesWritten;
        this.rec.bytes_read = sock.bytesRead;
        resolve();
      });
    });
    this.inbox = [];
    this.waiters = [];
    ws.on('message', (data, isBinary) => {
      const m = {
        t: now(),
        opcode: isBinary ? 'binary' : 'text',
        payload_bytes: data.length,
      };
      if (!isBinary) m.text = preview(data.toString('utf8'));
      this.rec.received.push(m);
      const msg = { data, isBinary };
      if (this.waiters.length) this.waiters.shift()(msg);
      else this.inbox.push(msg);
    });
    ws.on('ping', (data) => this.rec.events.push({ t: now(), event: 'ping_received', payload_bytes: data.length }));
    ws.on('pong', (data) => {
      this.rec.events.push({ t: now(), event: 'pong_received', payload_bytes: data.length });
      if (this.pongWaiter) {
        const w = this.pongWaiter;
        this.pongWaiter = null;
        w(data);
      }
    });
  }

  // Next data message received (resolves with {data, isBinary}).
  next() {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  _logSent(data, binary, fragments) {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    const m = { t: now(), opcode: binary ? 'binary' : 'text', payload_bytes: buf.length, fragments };
    if (!binary) m.text = preview(buf.toString('utf8'));
    this.rec.sent.push(m);
  }

  // One message in one frame (the frame may be compressed if the extension is on).
  send(data, opts = {}) {
    const binary = opts.binary !== undefined ? opts.binary : typeof data !== 'string';
    this._logSent(data, binary, 1);
    this.ws.send(data, Object.assign({ binary }, opts));
  }

  // One message in several frames; between(i) runs after fragment i (e.g. to send a ping there).
  sendFragments(chunks, binary, between) {
    const bufs = chunks.map((c) => (Buffer.isBuffer(c) ? c : Buffer.from(c)));
    this._logSent(Buffer.concat(bufs), binary, bufs.length);
    bufs.forEach((b, i) => {
      this.ws.send(b, { binary, fin: i === bufs.length - 1 });
      if (between && i < bufs.length - 1) between(i);
    });
  }

  ping(data) {
    this.rec.events.push({ t: now(), event: 'ping_sent', payload_bytes: Buffer.byteLength(data) });
    this.ws.ping(data);
  }

  // Ping and wait for the pong.
  pingAndWait(data) {
    const p = new Promise((resolve) => (this.pongWaiter = resolve));
    this.ping(data);
    return p;
  }

  close(code, reason) {
    this.rec.close_sent = { t: now(), code, reason };
    this.ws.close(code, reason);
  }

  async done() {
    await this.closed;
    await this.socketClosed;
  }
}

class PeerLog {
  constructor(role, extra = {}) {
    this.data = Object.assign({ role, peer: PEER, connections: [] }, extra);
  }

  // Attach to a WebSocket. `handshake` adds what this side saw of the opening handshake.
  attach(ws, handshake = {}) {
    const c = new ConnLog(this.data.role, ws, handshake);
    this.data.connections.push(c.rec);
    return c;
  }

  write(path) {
    fs.writeFileSync(path, JSON.stringify(this.data, null, 1) + '\n');
  }
}

// Handshake details as the server saw them: pass ws' 'headers' event array and the request.
function serverHandshake(req, responseHeaders) {
  const get = (name) => {
    const line = responseHeaders.find((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'));
    return line ? line.slice(line.indexOf(':') + 1).trim() : null;
  };
  return {
    request_target: req.url,
    request_extensions: req.headers['sec-websocket-extensions'] || null,
    request_protocols: req.headers['sec-websocket-protocol'] || null,
    key: req.headers['sec-websocket-key'],
    status_line: responseHeaders[0],
    status: Number(responseHeaders[0].split(' ')[1]),
    accept: get('Sec-WebSocket-Accept'),
    response_extensions: get('Sec-WebSocket-Extensions'),
  };
}

// Handshake details as the client saw them: its request and the 'upgrade' event's response.
function clientHandshake(req, res) {
  return {
    request_target: req.path,
    request_extensions: req.getHeader('sec-websocket-extensions') || null,
    request_protocols: req.getHeader('sec-websocket-protocol') || null,
    key: req.getHeader('sec-websocket-key'),
    status: res.statusCode,
    accept: res.headers['sec-websocket-accept'] || null,
    response_extensions: res.headers['sec-websocket-extensions'] || null,
  };
}

// Server helper: returns {wss, connections: AsyncQueue-like next()} with handshake info captured.
function trackServer(wss, log) {
  const pending = new WeakMap();
  wss.on('headers', (headers, req) => pending.set(req, headers.slice()));
  const queue = [];
  const waiters = [];
  wss.on('connection', (ws, req) => {
    const c = log.attach(ws, serverHandshake(req, pending.get(req)));
    if (waiters.length) waiters.shift()(c);
    else queue.push(c);
  });
  return {
    nextConnection() {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

// Client helper: connect and resolve with a ConnLog once open.
function connect(WebSocket, url, protocols, options, log) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    let hs = null;
    ws.on('upgrade', (res) => (hs = clientHandshake(ws._req, res)));
    ws.on('open', () => resolve(log.attach(ws, hs)));
    ws.on('error', reject);
  });
}

module.exports = { PeerLog, ConnLog, trackServer, connect, now, PEER, WS_VERSION };
