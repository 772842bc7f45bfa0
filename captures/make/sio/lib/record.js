'use strict';
// Ground-truth recorder for the node peers (socket.io 2 and 4, server and client).
//
// Every Engine.IO packet the peer sends or receives is recorded where the peer's own Engine.IO
// transport handles it (the library's transport classes are wrapped before any connection is made):
//   sent:     packets handed to the transport for writing (server: Transport#send, client: #write)
//   received: packets the transport decoded from the wire (polling: the whole payload, including a
//             close packet, which the library does not pass on; websocket: Transport#onPacket)
// Socket.IO packets are then decoded, per session and direction, from those Engine.IO messages with
// the peer's own socket.io-parser Decoder. The scenario scripts also log what the application saw
// (handlers, ack callbacks) with rec.app(); merge.py cross-checks both.
//
// The log is written as JSON by rec.dump(path); it never reads the capture.

const fs = require('fs');
const path = require('path');

const NM = path.join(__dirname, '..', 'node_modules');
const now = () => (performance.timeOrigin + performance.now()) / 1000; // epoch seconds, µs precision

const SIO_TYPES = ['CONNECT', 'DISCONNECT', 'EVENT', 'ACK', 'CONNECT_ERROR', 'BINARY_EVENT', 'BINARY_ACK'];

// Where each flavour's Engine.IO and socket.io-parser live (resolved the way the library resolves them).
const LAYOUT = {
  'server-v4': {
    transport: 'engine.io/build/transport.js',
    polling: ['engine.io/build/transports/polling.js', 'Polling'],
    websocket: ['engine.io/build/transports/websocket.js', 'WebSocket'],
    sioParser: 'socket.io-parser',
  },
  'client-v4': {
    transport: 'engine.io-client/build/cjs/transport.js',
    polling: ['engine.io-client/build/cjs/transports/polling.js', 'Polling'],
    websocket: ['engine.io-client/build/cjs/transports/websocket.js', 'BaseWS'],
    eioParser: 'engine.io-parser',
    sioParser: 'socket.io-parser',
  },
  'server-v2': {
    transport: 'socket.io-v2/node_modules/engine.io/lib/transport.js',
    polling: ['socket.io-v2/node_modules/engine.io/lib/transports/polling.js', null],
    websocket: ['socket.io-v2/node_modules/engine.io/lib/transports/websocket.js', null],
    eioParser: 'socket.io-v2/node_modules/engine.io-parser',
    sioParser: 'socket.io-v2/node_modules/socket.io-parser',
  },
  'client-v2': {
    transport: 'socket.io-client-v2/node_modules/engine.io-client/lib/transport.js',
    polling: ['socket.io-client-v2/node_modules/engine.io-client/lib/transports/polling.js', null],
    websocket: ['socket.io-client-v2/node_modules/engine.io-client/lib/transports/websocket.js', null],
    eioParser: 'socket.io-client-v2/node_modules/engine.io-parser',
    sioParser: 'socket.io-client-v2/node_modules/socket.io-parser',
  },
};

function load(rel, name) {
  const mod = require(path.join(NM, rel));
  if (name === undefined) return mod;
  return name === null ? mod : mod[name];
}

class Recorder {
  constructor(role, flavour) {
    this.role = role; // 'server' | 'client'
    this.flavour = flavour; // 'v4' | 'v2'
    this.key = `${role}-${flavour}`;
    this.layout = LAYOUT[this.key];
    this.packets = []; // Engine.IO packets, in the order the peer handled them
    this.appLog = [];
    this.transports = []; // transport info records
    this.nextTid = 1;
    this.extra = {};
    this.install();
  }

  // ---- transport bookkeeping -------------------------------------------------------------------
  info(t) {
    if (!t.__rec) {
      t.__rec = { tid: this.nextTid++, name: t.name, sid: null, ports: [], obj: t, created: now() };
      this.transports.push(t.__rec);
    }
    this.notePort(t);
    return t.__rec;
  }

  notePort(t) {
    const r = t.__rec;
    // the TCP port of the client side, as this peer sees it
    let sock = null;
    if (this.role === 'server' && t.name === 'websocket') sock = t.socket && t.socket._socket;
    if (this.role === 'client' && t.name === 'websocket') sock = t.ws && t.ws._socket;
    if (sock) {
      const port = this.role === 'server' ? sock.remotePort : sock.localPort;
      if (port && !r.ports.includes(port)) r.ports.push(port);
    }
  }

  bindSid(t, sid) {
    this.info(t).sid = sid;
  }

  sidOf(r) {
    const t = r.obj;
    if (!r.sid && this.role === 'client' && t.socket && t.socket.__sid) return t.socket.__sid;
    return r.sid || t.sid || (t.socket && typeof t.socket.id === 'string' && t.socket.id) ||
      (t.query && t.query.sid) || null;
  }

  record(t, dir, packet) {
    const r = this.info(t);
    if (!r.sid) r.sid = this.sidOf(r); // the client's engine clears its id when it closes
    let data = packet.data;
    // socket.io 2 hands engine.io its "0" CONNECT packet as the array its encoder returned
    // (engine.io's initialPacket option); the engine.io parser writes String(data) on the wire.
    if (Array.isArray(data)) data = String(data);
    this.packets.push({
      ts: now(), tid: r.tid, dir, transport: t.name, type: packet.type,
      data, // kept in memory for the Socket.IO decode at dump time
    });
  }

  // ---- wrapping the library's transports ---------------------------------------------------------
  install() {
    const L = this.layout;
    const rec = this;
    const Transport = load(L.transport, this.flavour === 'v4' ? 'Transport' : null);
    const Polling = load(L.polling[0], L.polling[1]);
    const WS = load(L.websocket[0], L.websocket[1]);
    const eioParser = L.eioParser ? load(L.eioParser) : null;

    // received over websocket: every decoded packet goes through Transport#onPacket
    const origOnPacket = Transport.prototype.onPacket;
    Transport.prototype.onPacket = function (packet) {
      if (this.name === 'websocket') rec.record(this, 'in', packet);
      return origOnPacket.call(this, packet);
    };

    // received over polling: decode the payload with the same parser, record every packet
    const origOnData = Polling.prototype.onData;
    Polling.prototype.onData = function (data) {
      const push = (p) => { rec.record(this, 'in', p); };
      if (rec.key === 'server-v4') {
        if (this.protocol === 3) this.parser.decodePayload(data, push);
        else this.parser.decodePayload(data).forEach(push);
      } else if (rec.key === 'client-v4') {
        eioParser.decodePayload(data, this.socket.binaryType).forEach(push);
      } else if (rec.key === 'server-v2') {
        eioParser.decodePayload(data, push);
      } else {
        eioParser.decodePayload(data, this.socket.binaryType, push);
      }
      return origOnData.call(this, data);
    };

    if (this.role === 'server') {
      // sent: Transport#send(packets) of both transports (a polling close packet is appended inside)
      for (const K of [Polling, WS]) {
        const origSend = K.prototype.send;
        K.prototype.send = function (packets) {
          const ret = origSend.call(this, packets);
          for (const p of packets) rec.record(this, 'out', p);
          return ret;
        };
      }
      // every HTTP request a polling transport serves: note the client's TCP port
      const origOnRequest = Polling.prototype.onRequest;
      Polling.prototype.onRequest = function (req) {
        const r = rec.info(this);
        const port = req.socket && req.socket.remotePort;
        if (port && !r.ports.includes(port)) r.ports.push(port);
        (r.requests = r.requests || []).push({ ts: now(), method: req.method, client_port: port });
        return origOnRequest.call(this, req);
      };
    } else {
      // sent: the client transports' write(packets) (send() ends there; the polling close packet
      // is written directly)
      for (const K of [Polling, WS]) {
        const origWrite = K.prototype.write;
        K.prototype.write = function (packets) {
          for (const p of packets) rec.record(this, 'out', p);
          return origWrite.call(this, packets);
        };
      }
    }
  }

  // Server: call with the engine.io server (io.engine / io.eio) to tie transports to session ids.
  watchEngine(engine) {
    engine.on('connection', (sock) => {
      this.bindSid(sock.transport, sock.id);
      const s = { sid: sock.id, opened: now(), upgraded: false, close_reason: null };
      (this.sessions = this.sessions || []).push(s);
      sock.on('upgrading', (t) => this.bindSid(t, sock.id));
      sock.on('upgrade', (t) => { this.bindSid(t, sock.id); s.upgraded = true; s.upgraded_ts = now(); });
      sock.on('close', (reason) => { s.close_reason = reason; s.closed = now(); });
    });
  }

  // Client: call with the engine.io-client socket (manager.engine) right after creating it.
  watchClientEngine(engine, label) {
    const s = { label, sid: null, opened: null, upgraded: false, close_reason: null };
    (this.sessions = this.sessions || []).push(s);
    engine.on('open', () => { s.sid = engine.id; engine.__sid = engine.id; s.opened = now(); });
    engine.on('upgrade', () => { s.upgraded = true; s.upgraded_ts = now(); });
    engine.on('close', (reason) => { s.close_reason = String(reason); s.closed = now(); });
    return s;
  }

  // Client: record every Engine.IO session a Manager opens (the first one and each reconnection).
  // Call right after creating the first socket of `manager`.
  watchManager(manager, label) {
    const seen = new Set();
    const watch = () => {
      const engine = manager.engine;
      if (!engine || seen.has(engine)) return;
      seen.add(engine);
      const s = { label, sid: null, opened: null, upgraded: false, close_reason: null };
      (this.sessions = this.sessions || []).push(s);
      const opened = () => { if (!s.sid) { s.sid = engine.id; engine.__sid = engine.id; s.opened = now(); } };
      if (engine.id) opened();
      engine.on('open', opened);
      engine.on('upgrade', () => { s.upgraded = true; s.upgraded_ts = now(); });
      engine.on('close', (reason) => { s.close_reason = String(reason); s.closed = now(); });
    };
    watch();
    manager.on('open', watch);
    manager.on('reconnect_attempt', () => setImmediate(watch));
    return () => watch();
  }

  app(kind, fields) {
    this.appLog.push({ ts: now(), kind, ...fields });
  }

  // Use a custom Socket.IO parser (e.g. require('socket.io-msgpack-parser')) for the decode: every
  // Socket.IO packet is then one binary Engine.IO message, without attachments.
  useParser(parser) {
    this.customParser = parser;
  }

  // ---- Socket.IO decode with the peer's own parser -----------------------------------------------
  // Each row also has packet_bytes (the encoded Socket.IO packet: UTF-8 bytes of the text part, or
  // the binary message of a custom parser), attachment_bytes (sum of the binary attachments),
  // packet_digest (sha1 of the encoded packet, 12 hex digits) and, for an EVENT whose last
  // argument is a string, last_arg (connection-state recovery puts the offset there).
  decodeSocketIO(list) {
    const sioParser = this.customParser || load(this.layout.sioParser);
    const custom = Boolean(this.customParser);
    const crypto = require('crypto');
    const out = [];
    let buffers = 0;
    let bufferBytes = 0;
    let current = null;
    let header = null; // the text part of the packet being decoded
    let headerPk = null;
    const decoder = new sioParser.Decoder();
    decoder.on('decoded', (p) => {
      // The parser turns BINARY_EVENT/BINARY_ACK into EVENT/ACK once the attachments are in: take
      // the type the sender put on the wire from the first character of the text part.
      const type = custom ? SIO_TYPES[p.type] : SIO_TYPES[Number(header[0])];
      const raw = typeof header === 'string' ? Buffer.from(header, 'utf8') : Buffer.from(header);
      const row = {
        ts: headerPk.ts, transport: headerPk.transport, type,
        ts_last: current.ts, namespace: p.nsp || '/',
        ack_id: p.id === undefined || p.id === null ? null : p.id,
        attachments: buffers,
        packet_bytes: raw.length,
        attachment_bytes: bufferBytes,
        packet_digest: crypto.createHash('sha1').update(raw).digest('hex').slice(0, 12),
      };
      if (type === 'EVENT' || type === 'BINARY_EVENT') {
        row.event = p.data[0];
        const last = p.data[p.data.length - 1];
        if (p.data.length > 1 && typeof last === 'string') row.last_arg = last;
      }
      if (type === 'CONNECT' || type === 'CONNECT_ERROR') row.data = p.data === undefined ? null : p.data;
      out.push(row);
      buffers = 0;
      bufferBytes = 0;
    });
    for (const pk of list) {
      current = pk;
      if (custom) { header = pk.data; headerPk = pk; }
      else if (typeof pk.data !== 'string') {
        buffers += 1;
        bufferBytes += pk.data.byteLength !== undefined ? pk.data.byteLength : pk.data.length;
      } else { header = pk.data; headerPk = pk; }
      decoder.add(pk.data);
    }
    return out;
  }

  dump(file) {
    for (const r of this.transports) this.notePort(r.obj);
    const bySidDir = new Map();
    const packets = this.packets.map((p) => {
      const r = this.transports.find((x) => x.tid === p.tid);
      const sid = this.sidOf(r);
      const bin = typeof p.data !== 'string' && p.data !== undefined && p.data !== null;
      const row = { ts: p.ts, sid, dir: p.dir, transport: p.transport, type: p.type };
      if (bin) row.binary_bytes = p.data.byteLength !== undefined ? p.data.byteLength : p.data.length;
      else if (p.type !== 'message' && p.data !== undefined) row.data = p.data;
      if (p.type === 'message') {
        const k = `${sid}|${p.dir}`;
        if (!bySidDir.has(k)) bySidDir.set(k, []);
        bySidDir.get(k).push(p);
      }
      return row;
    });
    const sio = [];
    for (const [k, list] of bySidDir) {
      const [sid, dir] = k.split('|');
      for (const row of this.decodeSocketIO(list)) sio.push({ sid, dir, ...row });
    }
    sio.sort((a, b) => a.ts - b.ts);
    const out = {
      role: this.role,
      flavour: this.flavour,
      transports: this.transports.map((r) => ({
        tid: r.tid, name: r.name, sid: this.sidOf(r), client_ports: r.ports, requests: r.requests || [],
      })),
      sessions: this.sessions || [],
      engineio: packets,
      socketio: sio,
      app: this.appLog,
      ...this.extra,
    };
    fs.writeFileSync(file, JSON.stringify(out, null, 1));
  }
}

module.exports = { Recorder, now, NM };
