#!/usr/bin/env python3
"""Write a synthetic WebSocket / Socket.IO capture for benchmarks.

    python3 benchmarks/make_capture.py --packets 500000 --connections 50 --out /tmp/bench.pcap

Each connection does a real-looking TCP handshake, an HTTP Upgrade to WebSocket on
``/socket.io/?EIO=4&transport=websocket`` with a valid Sec-WebSocket-Accept, the Engine.IO open
and Socket.IO CONNECT, then small text frames both ways (client frames masked, as RFC 6455
requires) carrying Socket.IO events, some with acks, and pure ACK segments, interleaved across
connections; FIN at the end. The format is what tcpdump writes on loopback (Ethernet, pcap, us).
It is deterministic for a given set of arguments.

    python3 benchmarks/make_capture.py --tls --packets 500000 --out /tmp/bench_tls.pcap

``--tls`` makes the same traffic (the same connections, HTTP messages and WebSocket frames, byte for
byte inside) over TLS 1.3 (TLS_AES_128_GCM_SHA256, see ``tls13_writer.py``): after the TCP
handshake, a ClientHello segment and the server's flight (ServerHello, then EncryptedExtensions,
Certificate, CertificateVerify and Finished encrypted, one record each) are added; the client's
Finished goes in the segment of the HTTP upgrade request; every write of the plaintext capture
(the request, the 101, each WebSocket frame) is one application-data record in its own segment.
The traffic secrets are random per connection and written as an NSS key log beside the capture
(``--keylog``, default the capture's name with ``.keys``). ``--packets`` counts the packets of the
plaintext capture: the TLS one has two more per connection.

    python3 benchmarks/make_capture.py --ipv6 --packets 500000 --out /tmp/bench6.pcap

``--ipv6``: the same packets over IPv6 (``::1`` both ways, no extension headers). ``--deflate``: the
upgrade negotiates permessage-deflate and every frame is compressed (RSV1, context takeover).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import struct
import zlib
from pathlib import Path

from tls13_writer import ServerIdentity, Tls13Session

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


IPV6 = False  # --ipv6: the same packets over IPv6 (::1, as tcpdump on loopback shows it)


def ip_tcp(src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int,
           payload: bytes) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                      65535, 0, 0)
    if IPV6:  # IPv4-mapped addresses would do too; the loopback's ::1 is what a real capture shows
        ip6 = struct.pack("!IHBB16s16s", 0x60000000, len(tcp) + len(payload), 6, 64,
                          (src & 0xFF).to_bytes(16, "big"), (dst & 0xFF).to_bytes(16, "big"))
        return b"\x00" * 12 + b"\x86\xdd" + ip6 + tcp + payload
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    return b"\x00" * 12 + b"\x08\x00" + ip + tcp + payload


def ws_frame(payload: bytes, masked: bool, rnd: random.Random, opcode: int = 1,
             deflater: zlib._Compress | None = None) -> bytes:
    rsv1 = 0
    if deflater is not None:  # permessage-deflate (RFC 7692 7.2.1): the sync flush's 00 00 ff ff left out
        payload = (deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
        rsv1 = 0x40
    n = len(payload)
    head = bytes([0x80 | rsv1 | opcode])
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
    tls: Tls13Session | None = None

    def __init__(self, i: int, rnd: random.Random) -> None:
        self.cip = 0x7F000001
        self.sip = 0x7F000001
        self.cport = 40000 + i
        self.sport = 9000
        self.cseq = rnd.randrange(1 << 32)
        self.sseq = rnd.randrange(1 << 32)
        self.n = 0
        self.unacked: list[int] = []  # ack ids of client events the server has still to answer
        self.deflaters: tuple[zlib._Compress, zlib._Compress] | None = None  # --deflate: (client, server)

    def frame(self, payload: bytes, from_client: bool, rnd: random.Random) -> bytes:
        """One text frame of the client (masked) or the server, compressed under --deflate."""
        deflater = self.deflaters[0 if from_client else 1] if self.deflaters else None
        return ws_frame(payload, from_client, rnd, deflater=deflater)

    def c2s(self, payload: bytes, flags: int = 0x18) -> bytes:
        p = ip_tcp(self.cip, self.sip, self.cport, self.sport, self.cseq, self.sseq, flags, payload)
        self.cseq += len(payload) + (1 if flags & 0x03 else 0)
        return p

    def s2c(self, payload: bytes, flags: int = 0x18) -> bytes:
        p = ip_tcp(self.sip, self.cip, self.sport, self.cport, self.sseq, self.cseq, flags, payload)
        self.sseq += len(payload) + (1 if flags & 0x03 else 0)
        return p

    def c2s_write(self, data: bytes, before: bytes = b"") -> bytes:
        """A segment carrying one write of the client (sealed in a record under TLS)."""
        return self.c2s(before + (self.tls.client.seal(data) if self.tls else data))

    def s2c_write(self, data: bytes) -> bytes:
        """A segment carrying one write of the server (sealed in a record under TLS)."""
        return self.s2c(self.tls.server.seal(data) if self.tls else data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tls", action="store_true", help="the same traffic over TLS 1.3, with a key log")
    ap.add_argument("--keylog", help="where --tls writes the key log (default: the capture's name with .keys)")
    ap.add_argument("--ipv6", action="store_true", help="the same traffic over IPv6 (::1)")
    ap.add_argument("--deflate", action="store_true",
                    help="permessage-deflate negotiated and every frame compressed (context takeover)")
    args = ap.parse_args()
    global IPV6
    IPV6 = args.ipv6
    rnd = random.Random(args.seed)
    conns = [Conn(i, rnd) for i in range(args.connections)]
    ext_req = ext_resp = b""
    if args.deflate:
        ext_req = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        ext_resp = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
        for c in conns:
            c.deflaters = (zlib.compressobj(wbits=-15), zlib.compressobj(wbits=-15))
    trnd = random.Random(f"tls-{args.seed}")  # TLS material and its extra packets: rnd stays the plaintext's
    if args.tls:
        identity = ServerIdentity("localhost", trnd)
        for c in conns:
            c.tls = Tls13Session(trnd, identity)
    ts = 1_700_000_000_000_000  # microseconds
    out = open(args.out, "wb")  # noqa: SIM115
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    count = 0  # packets of the plaintext capture
    extra = 0  # packets only the TLS capture has
    buf: list[bytes] = []

    def emit(frame: bytes, tls_only: bool = False) -> None:
        nonlocal ts, count, extra
        ts += (trnd if tls_only else rnd).randrange(1, 40)
        buf.append(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)) + frame)
        if tls_only:
            extra += 1
        else:
            count += 1
        if len(buf) >= 10000:
            out.write(b"".join(buf))
            buf.clear()

    for c in conns:
        emit(c.c2s(b"", 0x02))
        emit(c.s2c(b"", 0x12))
        emit(c.c2s(b"", 0x10))
        client_finished = b""
        if c.tls:
            emit(c.c2s(c.tls.client_hello_segment), tls_only=True)
            emit(c.s2c(c.tls.server_flight_segment), tls_only=True)
            client_finished = c.tls.client_finished_records
        key = base64.b64encode(rnd.randbytes(16))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        emit(c.c2s_write(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost:9000\r\n"
                   b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                   b"\r\nSec-WebSocket-Version: 13\r\n" + ext_req + b"\r\n", client_finished))
        emit(c.s2c_write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   b"Sec-WebSocket-Accept: " + accept + b"\r\n" + ext_resp + b"\r\n"))
        sid = f"sid{args.seed % 10000:04d}{c.cport:012d}".encode()  # one per seed and connection
        emit(c.s2c_write(c.frame(b'0{"sid":"' + sid + b'","upgrades":[],"pingInterval":25000,'
                            b'"pingTimeout":20000,"maxPayload":1000000}', False, rnd)))
        emit(c.c2s_write(c.frame(b"40", True, rnd)))
        emit(c.s2c_write(c.frame(b'40{"sid":"' + sid + b'"}', False, rnd)))
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
                emit(c.c2s_write(c.frame(b'42' + str(c.n).encode() + b'["' + ev + b'",{"n":' +
                                    str(c.n).encode() + b',"v":"' + b"x" * rnd.randrange(5, 60) + b'"}]',
                                    True, rnd)))
            else:
                emit(c.c2s_write(c.frame(b'42["' + ev + b'",{"n":' + str(c.n).encode() + b',"v":"' +
                                    b"x" * rnd.randrange(5, 60) + b'"}]', True, rnd)))
        elif r < 0.85:
            if c.unacked:  # the server answers pending acks first, as a real one would
                emit(c.s2c_write(c.frame(b'43' + str(c.unacked.pop(0)).encode() + b'[{"ok":true}]', False, rnd)))
            else:
                emit(c.s2c_write(c.frame(b'42["update",{"n":' + str(c.n).encode() + b',"data":"' +
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
    if args.tls:
        keylog = args.keylog or str(Path(args.out).with_suffix(".keys"))
        with open(keylog, "w") as f:
            f.write("".join(line + "\n" for c in conns if c.tls for line in c.tls.keylog_lines))
        print(f"{args.out}: {count + extra} packets, TLS 1.3; key log {keylog}")
    else:
        print(f"{args.out}: {count} packets")


if __name__ == "__main__":
    main()
