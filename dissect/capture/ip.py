"""IPv4 (RFC 791) and IPv6 (RFC 8200): headers, extension headers and fragment reassembly.

:func:`IPLayer.decode` returns ``(proto, src, dst, buf, l4_offset, l4_end)`` or None, where
``src``/``dst`` are the raw 4- or 16-byte addresses. A fragmented datagram yields nothing until its
last fragment arrives, then the reassembled datagram (a new ``bytes`` object). The pipeline handles
the common case (IPv4 without options or fragments) inline and calls here for the rest.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter

_ip4 = struct.Struct("!BBHHHBBH4s4s").unpack_from

# IPv6 extension headers that carry a Next Header and a length (RFC 8200 section 4).
_HOP_BY_HOP, _ROUTING, _FRAGMENT, _DEST_OPTS, _AH, _NO_NEXT = 0, 43, 44, 60, 51, 59
_MOBILITY = 135

Decoded = tuple[int, bytes, bytes, bytes, int, int]


def ntop(addr: bytes) -> str:
    """Text form of a raw IPv4/IPv6 address."""
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


def endpoint_text(ip: str, port: int | None) -> str:
    """An endpoint as people and tools write it: ``10.0.0.1:80``, ``[::1]:55310`` (RFC 3986
    section 3.2.2: an IPv6 address in brackets before a port); the address alone without a port."""
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class _Datagram:
    """Fragments of one datagram being reassembled (RFC 791 section 3.2 / RFC 8200 section 4.5)."""

    __slots__ = ("parts", "total", "first_ts", "size")

    def __init__(self, ts: int) -> None:
        self.parts: dict[int, bytes] = {}
        self.total = -1  # payload length, known once the last fragment is seen
        self.first_ts = ts
        self.size = 0

    def add(self, offset: int, data: bytes, last: bool) -> bytes | None:
        if offset not in self.parts:
            self.parts[offset] = data
            self.size += len(data)
        if last:
            self.total = offset + len(data)
        if self.total < 0 or self.size < self.total:
            return None
        out = bytearray(self.total)
        for o, d in self.parts.items():
            out[o : o + len(d)] = d[: max(0, self.total - o)]
        return bytes(out)


class IPLayer:
    """Stateful because of fragment reassembly; bounded by ``max_datagrams`` pending datagrams."""

    def __init__(self, max_datagrams: int = 4096, timeout_ns: int = 60 * 10**9) -> None:
        self.fragments: dict[tuple[bytes, bytes, int, int], _Datagram] = {}
        self.max_datagrams = max_datagrams
        self.timeout_ns = timeout_ns
        self.counters: Counter[str] = Counter()

    def decode(self, ethertype: int, buf: bytes, off: int, end: int, ts: int) -> Decoded | None:
        if ethertype == 0x0800:
            return self.ipv4(buf, off, end, ts)
        if ethertype == 0x86DD:
            return self.ipv6(buf, off, end, ts)
        self.counters[f"ethertype-0x{ethertype & 0xFFFF:04x}" if ethertype >= 0 else "link-other"] += 1
        return None

    def ipv4(self, buf: bytes, off: int, end: int, ts: int) -> Decoded | None:
        if off + 20 > end:
            self.counters["ipv4-truncated"] += 1
            return None
        vihl, _tos, total, ident, frag, _ttl, proto, _sum, src, dst = _ip4(buf, off)
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20:
            self.counters["ipv4-bad-header"] += 1
            return None
        # Ethernet pads short frames: the IP total length, not the frame, says where data ends.
        if total >= ihl and off + total <= end:
            end = off + total
        elif total < ihl and total != 0:  # total 0 happens with TSO captures: trust the frame
            self.counters["ipv4-bad-length"] += 1
            return None
        if frag & 0x3FFF:  # MF set or a non-zero fragment offset
            data = self._fragment((src, dst, ident, proto), (frag & 0x1FFF) * 8,
                                  bytes(buf[off + ihl : end]), not frag & 0x2000, ts)
            if data is None:
                return None
            return proto, src, dst, data, 0, len(data)
        return proto, src, dst, buf, off + ihl, end

    def ipv6(self, buf: bytes, off: int, end: int, ts: int) -> Decoded | None:
        if off + 40 > end:
            self.counters["ipv6-truncated"] += 1
            return None
        if buf[off] >> 4 != 6:
            self.counters["ipv6-bad-header"] += 1
            return None
        (plen,) = struct.unpack_from("!H", buf, off + 4)
        nxt = buf[off + 6]
        src = bytes(buf[off + 8 : off + 24])
        dst = bytes(buf[off + 24 : off + 40])
        if plen and off + 40 + plen <= end:
            end = off + 40 + plen
        p = off + 40
        frag_info: tuple[int, int, bool] | None = None
        while nxt in (_HOP_BY_HOP, _ROUTING, _DEST_OPTS, _FRAGMENT, _AH, _MOBILITY):
            if p + 8 > end:
                self.counters["ipv6-truncated"] += 1
                return None
            if nxt == _FRAGMENT:
                (fo,) = struct.unpack_from("!H", buf, p + 2)
                (ident,) = struct.unpack_from("!I", buf, p + 4)
                frag_info = (ident, fo & 0xFFF8, not fo & 1)
                nxt, p = buf[p], p + 8
            elif nxt == _AH:
                nxt, p = buf[p], p + (buf[p + 1] + 2) * 4
            else:
                nxt, p = buf[p], p + (buf[p + 1] + 1) * 8
        if nxt == _NO_NEXT or p > end:
            return None
        if frag_info is not None:
            ident, offset, last = frag_info
            if offset == 0 and last:  # an atomic fragment (RFC 6946)
                return nxt, src, dst, buf, p, end
            data = self._fragment((src, dst, ident, nxt), offset, bytes(buf[p:end]), last, ts)
            if data is None:
                return None
            return nxt, src, dst, data, 0, len(data)
        return nxt, src, dst, buf, p, end

    def _fragment(self, key: tuple[bytes, bytes, int, int], offset: int, data: bytes, last: bool,
                  ts: int) -> bytes | None:
        self.counters["ip-fragments"] += 1
        dg = self.fragments.get(key)
        if dg is None:
            if len(self.fragments) >= self.max_datagrams:
                self._expire(ts)
            dg = self.fragments[key] = _Datagram(ts)
        if dg.size + len(data) > 65535 + 65535:
            del self.fragments[key]
            self.counters["ip-fragments-oversize"] += 1
            return None
        out = dg.add(offset, data, last)
        if out is not None:
            del self.fragments[key]
            self.counters["ip-reassembled"] += 1
        return out

    def _expire(self, ts: int) -> None:
        """Drop datagrams whose fragments stopped coming (or the oldest half when all are young)."""
        old = [k for k, d in self.fragments.items() if ts - d.first_ts > self.timeout_ns]
        if not old:
            old = sorted(self.fragments, key=lambda k: self.fragments[k].first_ts)[: len(self.fragments) // 2]
        for k in old:
            del self.fragments[k]
        self.counters["ip-fragments-incomplete"] += len(old)
