"""Hand-made traffic for the hostile tests and the regression captures: one TCP connection from
a list of (direction, bytes) steps, WebSocket opening handshakes, frames, Engine.IO / Socket.IO
sessions. Written with :mod:`tests.craft` (dpkt); nothing here comes from dissect."""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from collections.abc import Sequence

from tests import craft

C2S, S2C = 0, 1
FIN, SYN, PSH, ACK = 0x01, 0x02, 0x08, 0x10


GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
MASK = b"\x37\xfa\x21\x3d"
C2S, S2C = 0, 1
FIN, SYN, PSH, ACK = 0x01, 0x02, 0x08, 0x10


# -- building traffic ------------------------------------------------------------------------------


def conversation(steps: Sequence[tuple[int, bytes]], mss: int = 1460, t0: float = craft.T0,
                 client: tuple[str, int] = craft.CLIENT, server: tuple[str, int] = craft.SERVER,
                 close: bool = True) -> list[tuple[float, bytes]]:
    """One TCP connection: handshake, then each (direction, bytes) step in order, cut into
    segments of at most ``mss`` bytes, then FIN both ways. Ethernet frames."""
    pk: list[tuple[float, bytes]] = []
    t = t0
    seq = [1000, 5000]
    ends = [client, server]

    def send(d: int, flags: int, data: bytes = b"") -> None:
        nonlocal t
        ip = craft.tcp_packet(ends[d], ends[1 - d], seq[d], seq[1 - d], flags, data)
        pk.append((t, craft.ethernet(ip)))
        t += 0.0001

    send(C2S, SYN)
    seq[C2S] += 1
    pk.append((t, craft.ethernet(craft.tcp_packet(server, client, seq[S2C], seq[C2S], SYN | ACK))))
    t += 0.0001
    seq[S2C] += 1
    send(C2S, ACK)
    for d, data in steps:
        for i in range(0, len(data), mss):
            part = data[i : i + mss]
            send(d, PSH | ACK, part)
            seq[d] += len(part)
    if close:
        send(C2S, FIN | ACK)
        seq[C2S] += 1
        send(S2C, FIN | ACK)
        seq[S2C] += 1
        send(C2S, ACK)
    return pk


def http_exchange(target: str = "/", body: bytes = b"ok") -> list[tuple[int, bytes]]:
    return [
        (C2S, f"GET {target} HTTP/1.1\r\nHost: example\r\n\r\n".encode()),
        (S2C, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)),
    ]


def ws_upgrade(target: str = "/chat", deflate: str | None = None) -> list[tuple[int, bytes]]:
    """A valid RFC 6455 opening handshake (Sec-WebSocket-Accept computed here, not by dissect);
    ``deflate``: the permessage-deflate extension the server accepts (its parameters)."""
    accept = base64.b64encode(hashlib.sha1((KEY + GUID).encode()).digest()).decode()
    offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate is not None else ""
    ext = f"Sec-WebSocket-Extensions: {deflate}\r\n" if deflate is not None else ""
    req = (f"GET {target} HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n")
    resp = (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n{ext}\r\n")
    return [(C2S, req.encode()), (S2C, resp.encode())]


def c2s_text(payload: bytes) -> tuple[int, bytes]:
    return C2S, ws_frame(0x81, payload, MASK)


def s2c_text(payload: bytes) -> tuple[int, bytes]:
    return S2C, ws_frame(0x81, payload, None)


EIO4_OPEN = b'0{"sid":"AAAAsid","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'


def sio_session(*c2s_packets: bytes) -> list[tuple[int, bytes]]:
    """Socket.IO v5 over a WebSocket (Engine.IO v4): open, CONNECT /, then the client's packets."""
    steps = ws_upgrade("/socket.io/?EIO=4&transport=websocket")
    steps += [s2c_text(EIO4_OPEN), c2s_text(b"40"), s2c_text(b'40{"sid":"BBBBsid"}')]
    steps += [c2s_text(p) for p in c2s_packets]
    return steps


def polling(target: str, body: bytes, content_type: str = "text/plain; charset=UTF-8") -> list[tuple[int, bytes]]:
    return [
        (C2S, f"GET {target} HTTP/1.1\r\nHost: example\r\n\r\n".encode()),
        (S2C, f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
         + body),
    ]


V3_OPEN = b'0{"sid":"CCCCsid","upgrades":[],"pingInterval":25000,"pingTimeout":5000}'


def ws_frame(b0: int, payload: bytes, mask: bytes | None) -> bytes:
    """One RFC 6455 frame: first byte ``b0``, minimal length encoding, masked when ``mask``."""
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 65536:
        head = bytes((b0, mbit | 126)) + struct.pack("!H", n)
    else:
        head = bytes((b0, mbit | 127)) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(c ^ mask[k & 3] for k, c in enumerate(payload))


def deflate(data: bytes) -> bytes:
    """A permessage-deflate message body (RFC 7692 7.2.1: without the final 00 00 ff ff)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def deflate_bomb(inflated_mib: int) -> bytes:
    """A raw-deflate stream that inflates to ``inflated_mib`` MiB of zeros (deflate tops out at
    about 1:1032, so it is about a thousandth of that on the wire). The same sync-flushed chunk of
    a fresh compressor repeated is a valid stream."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = c.compress(b"\0" * (16 << 20)) + c.flush(zlib.Z_SYNC_FLUSH)
    stream = chunk * max(1, inflated_mib // 16)
    return stream[:-4]


def pcap(steps: Sequence[tuple[int, bytes]], mss: int = 1460) -> bytes:
    return craft.write_pcap(conversation(steps, mss=mss))


def blocks(*items: tuple[int, bytes], endian: str = "<") -> bytes:
    """Raw pcapng blocks ``(type, body)`` after a section header, bodies written as given (so
    they may be too short for their type); padding to 32 bits added."""
    out = bytearray()
    for btype, body in ((0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1)), *items):
        pad = (-len(body)) % 4
        total = 12 + len(body) + pad
        out += struct.pack(endian + "II", btype, total) + body + b"\0" * pad + struct.pack(endian + "I", total)
    return bytes(out)
