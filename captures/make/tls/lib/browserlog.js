'use strict';
// The browser page's own log (chromium_page.html) → the client log ../../sio/lib/record.js writes for
// node clients, so that ../../sio/sio.py's build_truth merges it with the server's unchanged.
//
// The page recorded every message its socket.io client exchanged through the browser's
// XMLHttpRequest (polling: POST bodies, GET response texts) and WebSocket (each message) APIs. Here
// they are decoded into Engine.IO packets with the same engine.io-parser the client bundle contains
// (polling: decodePayload, as record.js does; WebSocket: one packet per message), per Engine.IO
// session (the sid of the request URL, or of the open packet for the handshake GET) and transport;
// the Socket.IO packets are then decoded by record.js's own decodeSocketIO (the peer's socket.io-parser).
// The page's engine "packet"/"packetCreate" events are compared with the result (counts by
// direction and type; they leave out the upgrade probe and the upgrade packet, which the transports
// send and receive themselves).

const fs = require('fs');

function browserClientLog(page, requireRelocated, file) {
  const { Recorder } = requireRelocated('../../sio/lib/record.js');
  const eioParser = require('engine.io-parser');
  class BrowserRecorder extends Recorder {
    install() {} // nothing to wrap in this process: the packets come from the page's log
  }
  const rec = new BrowserRecorder('client', 'v4');
  const tids = new Map();
  const tidOf = (sid, name) => {
    const k = `${sid}|${name}`;
    if (!tids.has(k)) {
      const r = { tid: rec.nextTid++, name, sid, ports: [], obj: { name }, created: null };
      tids.set(k, r);
      rec.transports.push(r);
    }
    return tids.get(k).tid;
  };
  const problems = [];
  for (const w of page.wire) {
    let sid = new URL(w.url).searchParams.get('sid');
    const transport = w.kind === 'xhr' ? 'polling' : 'websocket';
    let packets;
    if (transport === 'polling') {
      packets = eioParser.decodePayload(w.text, 'nodebuffer');
    } else {
      packets = [eioParser.decodePacket(w.text !== undefined ? w.text : Buffer.from(w.b64, 'base64'), 'nodebuffer')];
    }
    if (!sid && packets[0] && packets[0].type === 'open') sid = JSON.parse(packets[0].data).sid;
    if (!sid) problems.push(`no Engine.IO sid for ${w.kind} ${w.dir} ${w.url}`);
    if (packets.some((p) => p.type === 'error')) problems.push(`undecodable ${w.kind} message: ${JSON.stringify(w)}`);
    const tid = tidOf(sid, transport);
    for (const p of packets) rec.packets.push({ ts: w.ts, tid, dir: w.dir, transport, type: p.type, data: p.data });
  }
  rec.sessions = page.sessions;
  rec.appLog = page.app;

  // cross-check with the engine's own events (the probe and upgrade packets are not among them)
  const count = (rows) => {
    const c = {};
    for (const r of rows) c[`${r.dir} ${r.type}`] = (c[`${r.dir} ${r.type}`] || 0) + 1;
    return c;
  };
  const fromWire = count(rec.packets.filter((p) => !(p.transport === 'websocket' &&
    ((p.type === 'ping' || p.type === 'pong') && p.data === 'probe' || p.type === 'upgrade'))));
  const fromEngine = count(page.engine);
  if (JSON.stringify(Object.entries(fromWire).sort()) !== JSON.stringify(Object.entries(fromEngine).sort())) {
    problems.push(`wire packets ${JSON.stringify(fromWire)} != engine events ${JSON.stringify(fromEngine)}`);
  }
  const ioVersion = require('socket.io-client/package.json').version;
  rec.extra.peer = `socket.io-client ${ioVersion} (browser bundle socket.io.min.js) in ${page.user_agent}`;
  rec.extra.scenario = 'tls13_chromium_sio4';
  rec.extra.page_errors = page.errors;
  rec.extra.browserlog_problems = problems;
  rec.extra.engine_event_counts = fromEngine;
  rec.dump(file);
  return problems;
}

module.exports = { browserClientLog };
