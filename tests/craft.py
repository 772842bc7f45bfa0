"""Crafted captures, written with dpkt, for what real programs will not produce on demand:
reordering, overlaps, sequence wraparound, lost segments, odd link types and damaged files.
Everything else is tested on the real-traffic corpus in ``captures/``."""

from __future__ import annotations

import gzip
import io
import socket
import struct
from collections.abc import Iterable, Sequence

import dpkt

CLIENT = ("10.0.0.1", 40000)
SERVER = ("10.0.0.2", 80)
T0 = 1_700_000_000.0


def tcp_packet(src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: int,
               data: bytes = b"", v6: bool = False) -> bytes:
    """An IP packet (v4 or v6) holding one TCP segment."""
    tcp = dpkt.tcp.TCP(sport=src[1], dport=dst[1], seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF,
                       flags=flags, win=65535, data=data)
    if v6:
        ip6 = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, src[0]),
                           dst=socket.inet_pton(socket.AF_INET6, dst[0]), nxt=6, hlim=64, data=tcp)
        ip6.plen = len(bytes(tcp))
        return bytes(ip6)
    ip = dpkt.ip.IP(src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=6, ttl=64, data=tcp)
    ip.len = 20 + len(bytes(tcp))
    return bytes(ip)


def ethernet(ip: bytes, v6: bool = False, vlans: Sequence[int] = ()) -> bytes:
    eth_type = 0x86DD if v6 else 0x0800
    tags = b"".join(struct.pack("!HH", 0x8100, v) for v in vlans)
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + tags + struct.pack("!H", eth_type) + ip


def sll(ip: bytes, v6: bool = False) -> bytes:
    return struct.pack("!HHH8sH", 0, 772, 6, b"\0" * 8, 0x86DD if v6 else 0x0800) + ip


def sll2(ip: bytes, v6: bool = False) -> bytes:
    return struct.pack("!HHIHBB8s", 0x86DD if v6 else 0x0800, 0, 1, 772, 0, 6, b"\0" * 8) + ip


def null_loop(ip: bytes, v6: bool = False) -> bytes:
    return struct.pack("<I", 30 if v6 else 2) + ip


def write_pcap(packets: Iterable[tuple[float, bytes]], linktype: int = 1, nano: bool = False,
               big_endian: bool = False, snaplen: int = 262144) -> bytes:
    endian = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = io.BytesIO()
    out.write(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    for ts, frame in packets:
        # Float seconds are taken to the microsecond; an int is nanoseconds.
        ns = ts if isinstance(ts, int) else round(ts * 1e6) * 1000
        sec, frac = divmod(ns, 1_000_000_000)
        if not nano:
            frac //= 1000
        cap = frame[:snaplen]
        out.write(struct.pack(endian + "IIII", sec, frac, len(cap), len(frame)))
        out.write(cap)
    return out.getvalue()


def handshake_and_data(c2s: Sequence[bytes] = (b"hello",), s2c: Sequence[bytes] = (b"world",),
                       isn_c: int = 1000, isn_s: int = 5000, t0: float = T0) -> list[tuple[float, bytes]]:
    """A whole, well-behaved connection: handshake, data each way, FIN both ways."""
    F, S, P, A = 1, 2, 8, 16
    pk: list[tuple[float, bytes]] = []
    t = t0
    pk.append((t, tcp_packet(CLIENT, SERVER, isn_c, 0, S)))
    pk.append((t + 0.001, tcp_packet(SERVER, CLIENT, isn_s, isn_c + 1, S | A)))
    pk.append((t + 0.0015, tcp_packet(CLIENT, SERVER, isn_c + 1, isn_s + 1, A)))
    cs, ss = isn_c + 1, isn_s + 1
    t += 0.01
    for d in c2s:
        pk.append((t, tcp_packet(CLIENT, SERVER, cs, ss, P | A, d)))
        cs += len(d)
        t += 0.001
    for d in s2c:
        pk.append((t, tcp_packet(SERVER, CLIENT, ss, cs, P | A, d)))
        ss += len(d)
        t += 0.001
    pk.append((t, tcp_packet(CLIENT, SERVER, cs, ss, F | A)))
    pk.append((t + 0.001, tcp_packet(SERVER, CLIENT, ss, cs + 1, F | A)))
    pk.append((t + 0.002, tcp_packet(CLIENT, SERVER, cs + 1, ss + 1, A)))
    return pk


def pcapng(sections: Sequence[Sequence[tuple[str, object]]], big_endian: bool = False) -> bytes:
    """A pcapng file from ``("idb", (linktype, tsresol_byte|None))`` and
    ``("epb", (iface, ticks, frame))`` / ``("spb", frame)`` / ``("unknown", None)`` items."""
    e = ">" if big_endian else "<"

    def block(btype: int, body: bytes) -> bytes:
        pad = (-len(body)) % 4
        total = 12 + len(body) + pad
        return struct.pack(e + "II", btype, total) + body + b"\0" * pad + struct.pack(e + "I", total)

    out = io.BytesIO()
    for items in sections:
        out.write(block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)))
        for kind, val in items:
            if kind == "idb":
                lt, res = val  # type: ignore[misc]
                opts = b""
                if res is not None:
                    opts = struct.pack(e + "HH", 9, 1) + bytes([res]) + b"\0\0\0" + struct.pack(e + "HH", 0, 0)
                out.write(block(1, struct.pack(e + "HHI", lt, 0, 262144) + opts))
            elif kind == "epb":
                iface, ticks, frame = val  # type: ignore[misc]
                body = struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                                   len(frame)) + frame
                out.write(block(6, body))
            elif kind == "spb":
                frame = val  # type: ignore[assignment]
                out.write(block(3, struct.pack(e + "I", len(frame)) + frame))  # type: ignore[arg-type]
            elif kind == "unknown":
                out.write(block(0x00000BEE, b"\x01\x02\x03\x04"))
    return out.getvalue()


def ws_frame(opcode: int, payload: bytes, mask: bytes | None = None, fin: bool = True) -> bytes:
    """One RFC 6455 section 5.2 frame (masked when ``mask`` is given; 7-, 16- or 64-bit length)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    m = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([m | 127]) + n.to_bytes(8, "big")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def gz(data: bytes) -> bytes:
    return gzip.compress(data)
