#!/usr/bin/env python3
"""How fast can one pure-Python process do this job at all? A lower-bound sketch, not a dissector.

    python3 benchmarks/floor.py /tmp/bench.pcap

Reads the benchmark capture of ``make_capture.py`` (little-endian microsecond pcap, Ethernet,
IPv4 without options, one WebSocket frame per segment, no loss) and does the least that the three
big tables need: walk the records in 8 MiB chunks, take the flow key, check the segment is the
next in order, parse the frame header, unmask with ``int.from_bytes`` XOR, take a text preview
and the Socket.IO event name, build one ws_frames, ws_messages and sio_packets row per frame and
write them as CSV, formatted by hand in batches. No reassembly, no anomalies, no sessions,
handshakes or summary: anything else in the capture is skipped. Its time is what ``dissect
report`` cannot beat in one process on this machine; its output is not checked and not used.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import time


def main(path: str) -> None:
    t0 = time.perf_counter()
    rec = struct.Struct("<IIII").unpack_from
    tcp = struct.Struct("!HHIIBB").unpack_from
    flows: dict[bytes, list[int]] = {}
    out_dir = tempfile.mkdtemp(prefix="dissect-floor-")
    outs = [open(os.path.join(out_dir, f"{t}.csv"), "w")  # noqa: SIM115
            for t in ("ws_frames", "ws_messages", "sio_packets")]
    b = {True: "true", False: "false"}
    frames: list[tuple] = []
    msgs: list[tuple] = []
    sio: list[tuple] = []
    rows = 0
    cache: dict[int, str] = {}

    def ts_text(v: int) -> str:
        s = str(v // 1000)
        s = s[:-6] + "." + s[-6:]
        cache[v] = s
        return s

    def flush() -> None:
        outs[0].write("".join([
            f"{a},{i},{cache.get(t) or ts_text(t)},{d},{b[f]},{b[r1]},{b[r2]},{b[r3]},{op},{opn},{b[m]},"
            f"{ln},{hl},{b[c]},,,\n"
            for a, i, t, d, f, r1, r2, r3, op, opn, m, ln, hl, c in frames]))
        outs[1].write("".join([
            f"{a},{i},{cache.get(t) or ts_text(t)},{cache.get(t2) or ts_text(t2)},{d},{opn},{n},{w},{p},"
            f"{b[c]},\"{pv.replace(chr(34), chr(34) * 2)}\",\n"
            for a, i, t, t2, d, opn, n, w, p, c, pv in msgs]))
        outs[2].write("".join([
            f"{a},{cache.get(t) or ts_text(t)},{d},websocket,4,message,EVENT,/,{ev or ''},,,{n},,,\n"
            for a, t, d, ev, n in sio]))
        cache.clear()

    with open(path, "rb") as f:
        f.read(24)
        pending = b""
        while True:
            chunk = f.read(8 << 20)
            if not chunk:
                break
            data = pending + chunk if pending else chunk
            n = len(data)
            off = 0
            while off + 16 <= n:
                sec, frac, incl, _orig = rec(data, off)
                end = off + 16 + incl
                if end > n:
                    break
                p = off + 16
                off = end
                if data[p + 12] != 8 or data[p + 13] != 0 or data[p + 14] != 0x45 or data[p + 23] != 6:
                    continue
                l3 = p + 14
                l4 = l3 + 20
                l4end = l3 + ((data[l3 + 2] << 8) | data[l3 + 3])
                key = data[l3 + 12 : l3 + 24]
                st = flows.get(key)
                _sp, _dp, seq, _ack, doff, flags = tcp(data, l4)
                poff = l4 + ((doff >> 4) << 2)
                if st is None:
                    flows[key] = [(seq + 1) if flags & 2 else seq, 0, len(flows) + 1]
                    continue
                if l4end <= poff + 2 or seq != st[0]:
                    continue
                st[0] = (seq + l4end - poff) & 0xFFFFFFFF
                ts = sec * 1_000_000_000 + frac * 1000
                b1 = data[poff + 1]
                ln = b1 & 0x7F
                hl = 2
                if ln == 126:
                    ln = (data[poff + 2] << 8) | data[poff + 3]
                    hl = 4
                elif ln == 127:
                    continue
                a = poff + hl
                masked = bool(b1 & 0x80)
                if masked:
                    m = data[a : a + 4]
                    a += 4
                    hl += 4
                    payload = (int.from_bytes(data[a : a + ln], "big")
                               ^ int.from_bytes((m * ((ln >> 2) + 1))[:ln], "big")).to_bytes(ln, "big")
                else:
                    payload = data[a : a + ln]
                d = "c2s" if masked else "s2c"
                preview = payload[:120].decode("utf-8", "replace")
                fi = st[1]
                st[1] = fi + 1
                sid = st[2]
                frames.append((sid, fi, ts, d, True, False, False, False, 1, "text", masked, ln, hl, False))
                msgs.append((sid, fi, ts, ts, d, "text", 1, hl + ln, ln, False, preview))
                event = None
                if payload[:4] == b'42["':
                    q = payload.find(b'"', 4)
                    event = payload[4:q].decode("utf-8", "replace")
                sio.append((sid, ts, d, event, ln - 1))
                if len(frames) >= 4096:
                    rows += 3 * len(frames)
                    flush()
                    frames, msgs, sio = [], [], []
            pending = data[off:]
    rows += 3 * len(frames)
    flush()
    for o in outs:
        o.close()
    seconds = time.perf_counter() - t0
    for name in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, name))
    os.rmdir(out_dir)
    print(f"{path}: {rows:,} rows in {seconds:.2f} s (the least one Python process takes for these tables)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: floor.py CAPTURE (a capture made by benchmarks/make_capture.py)")
    main(sys.argv[1])
