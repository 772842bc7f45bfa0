'use strict';
// Small helpers shared by the node scenario programs.

const readline = require('readline');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Fixed binary payloads: byte i of a buffer of length n with seed s is (s + i * 7) & 0xff.
function pattern(n, seed) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (seed + i * 7) & 0xff;
  return b;
}

// Parse --key value arguments.
function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) {
      const k = argv[i].slice(2);
      const v = argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : true;
      out[k] = v;
    }
  }
  return out;
}

// Resolve when `emitter` emits `event` (first argument), or reject after `ms`.
function once(emitter, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (...a) => { clearTimeout(t); resolve(a.length > 1 ? a : a[0]); });
  });
}

// Servers: print READY once listening, then wait for "quit" on stdin (sent by orchestrate.py
// after every client has finished), dump the log and exit.
function serveUntilQuit(onQuit) {
  console.log('READY');
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    if (line.trim() === 'quit') {
      await onQuit();
      process.exit(0);
    }
  });
}

// Make every WebSocket upgrade request wait `ms` before engine.io sees it, so a polling session
// stays on polling long enough for a few events before the upgrade.
function delayUpgrades(httpServer, ms) {
  const listeners = httpServer.listeners('upgrade').slice();
  httpServer.removeAllListeners('upgrade');
  httpServer.on('upgrade', (req, socket, head) => {
    setTimeout(() => listeners.forEach((l) => l.call(httpServer, req, socket, head)), ms);
  });
}

module.exports = { sleep, pattern, args, once, serveUntilQuit, delayUpgrades };
