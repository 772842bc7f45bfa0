#!/usr/bin/env python3
"""Write a synthetic WebSocket / Socket.IO capture for benchmarks.

    python3 benchmarks/make_capture.py --packets 500000 --connections 50 --out /tmp/bench.pcap

Each connection does a real-looking TCP handshake, an HTTP Upgrade to WebSocket on
``/socket.io/?EIO=4&transport=websocket`` with a valid Sec-WebSocket-Accept, the Engine.IO open
and Socket.IO CONNECT, then small text frames both ways (client frames masked, as RFC 6455
requires) carrying Socket.IO events, some with acks, and pure ACK segments, interleaved across
connections; FIN at the end. The format is what tcpdump writes on loopback (Ethernet, pcap, us).
It is deterministic for a given set of arguments.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ip_tcp(src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int,
           payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                      65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    return b"\x00" * 12 + b"\x08\x00" + ip + tcp + payload


def ws_frame(payload: bytes, masked: bool, rnd: random.Random, opcode: int = 1) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    mbit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = rnd.randbytes(4)
    k = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
    return head + key + body


class Conn:
    def __init__(self, i: int, rnd: random.Random) -> None:
        self.cip = 0x7F000001
        self.sip = 0x7F000001
        self.cport = 40000 + i
        self.sport = 9000
        self.cseq = rnd.randrange(1 << 32)
        self.sseq = rnd.randrange(1 << 32)
        self.n = 0
        self.unacked: list[int] = []  # ack ids of client events the server has still to answer

    def c2s(self, payload: bytes, flags: int = 0x18) -> bytes:
        p = ip_tcp(self.cip, self.sip, self.cport, self.sport, self.cseq, self.sseq, flags, payload)
        self.cseq += len(payload) + (1 if flags & 0x03 else 0)
        return p

    def s2c(self, payload: bytes, flags: int = 0x18) -> bytes:
        p = ip_tcp(self.sip, self.cip, self.sport, self.cport, self.sseq, self.cseq, flags, payload)
        self.sseq += len(payload) + (1 if flags & 0x03 else 0)
        return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    conns = [Conn(i, rnd) for i in range(args.connections)]
    ts = 1_700_000_000_000_000  # microseconds
    out = open(args.out, "wb")  # noqa: SIM115
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    count = 0
    buf: list[bytes] = []

    def emit(frame: bytes) -> None:
        nonlocal ts, count
        ts += rnd.randrange(1, 40)
        buf.append(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)) + frame)
        count += 1
        if len(buf) >= 10000:
            out.write(b"".join(buf))
            buf.clear()

    for c in conns:
        emit(c.c2s(b"", 0x02))
        emit(c.s2c(b"", 0x12))
        emit(c.c2s(b"", 0x10))
        key = base64.b64encode(rnd.randbytes(16))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        emit(c.c2s(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost:9000\r\n"
                   b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                   b"\r\nSec-WebSocket-Version: 13\r\n\r\n"))
        emit(c.s2c(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"))
        sid = f"sid{c.cport:016d}".encode()
        emit(c.s2c(ws_frame(b'0{"sid":"' + sid + b'","upgrades":[],"pingInterval":25000,'
                            b'"pingTimeout":20000,"maxPayload":1000000}', False, rnd)))
        emit(c.c2s(ws_frame(b"40", True, rnd)))
        emit(c.s2c(ws_frame(b'40{"sid":"' + sid + b'"}', False, rnd)))
    tail = 4 * len(conns)
    events = [b"tick", b"chat message", b"position", b"state"]
    while count < args.packets - tail:
        c = conns[rnd.randrange(len(conns))]
        c.n += 1
        r = rnd.random()
        if r < 0.45:
            ev = events[c.n % 4]
            if c.n % 10 == 0:  # every tenth event asks for an ack
                c.unacked.append(c.n)
                emit(c.c2s(ws_frame(b'42' + str(c.n).encode() + b'["' + ev + b'",{"n":' +
                                    str(c.n).encode() + b',"v":"' + b"x" * rnd.randrange(5, 60) + b'"}]',
                                    True, rnd)))
            else:
                emit(c.c2s(ws_frame(b'42["' + ev + b'",{"n":' + str(c.n).encode() + b',"v":"' +
                                    b"x" * rnd.randrange(5, 60) + b'"}]', True, rnd)))
        elif r < 0.85:
            if c.unacked:  # the server answers pending acks first, as a real one would
                emit(c.s2c(ws_frame(b'43' + str(c.unacked.pop(0)).encode() + b'[{"ok":true}]', False, rnd)))
            else:
                emit(c.s2c(ws_frame(b'42["update",{"n":' + str(c.n).encode() + b',"data":"' +
                                    b"y" * rnd.randrange(5, 120) + b'"}]', False, rnd)))
        else:
            emit(c.c2s(b"", 0x10))
    for c in conns:
        emit(c.c2s(b"", 0x11))
        emit(c.s2c(b"", 0x11))
        emit(c.c2s(b"", 0x10))
        emit(c.s2c(b"", 0x10))
    out.write(b"".join(buf))
    out.close()
    print(f"{args.out}: {count} packets")


if __name__ == "__main__":
    main()
