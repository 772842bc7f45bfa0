"""Tunnels: the inner packets of VXLAN (RFC 7348), Geneve (RFC 8926) and GRE (RFC 2784, RFC 2890).

The pipeline finds a tunnel while decoding the outer packet and calls :func:`udp_tunnel` or
:func:`gre`; they queue the inner packet (the outer packet's buffer with the inner offsets), and
:func:`with_injected` yields it right after its outer packet, so it is dissected like any other.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator

from dissect.capture import link
from dissect.capture.reader import Packet

# The wire length of a queued inner packet: not a record of the file (its frame number is its
# outer packet's).
INNER = -1


def with_injected(reader: Iterable[Packet], inject: deque[Packet]) -> Iterator[Packet]:
    """The reader's packets, each followed by the inner packets its tunnels handed back."""
    for p in reader:
        yield p
        while inject:
            yield inject.popleft()


def udp_tunnel(inject: deque[Packet], counters: Counter[str], ts: int, data: bytes, off: int, end: int,
                port: int) -> None:
    """VXLAN (RFC 7348: 8-byte header, I flag, inner Ethernet) or Geneve (RFC 8926: 8 bytes plus
    options, inner protocol by EtherType) on ``data[off:end]``."""
    if end - off < 8:
        return
    if port == 4789:
        if not data[off] & 0x08:
            return
        inner, lt = off + 8, link.LINKTYPE_ETHERNET
    else:
        if data[off] >> 6:  # Geneve version 0 only
            return
        inner = off + 8 + (data[off] & 0x3F) * 4
        lt = _BY_ETHERTYPE.get((data[off + 2] << 8) | data[off + 3], -1)
        if lt < 0:
            return
    if inner < end:
        counters["tunnel-vxlan" if port == 4789 else "tunnel-geneve"] += 1
        inject.append((ts, lt, data, inner, end - inner, INNER))


def gre(inject: deque[Packet], counters: Counter[str], ts: int, data: bytes, off: int, end: int) -> None:
    """GRE version 0 (RFC 2784, RFC 2890 key and sequence number): the payload is a packet."""
    if end - off < 4:
        return
    flags = (data[off] << 8) | data[off + 1]
    if flags & 0x0007:  # version 1 is PPTP's enhanced GRE: not followed
        counters["gre-other"] += 1
        return
    inner = off + 4 + 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
    lt = _BY_ETHERTYPE.get((data[off + 2] << 8) | data[off + 3], -1)
    if lt < 0 or inner >= end:
        counters["gre-other"] += 1
        return
    counters["tunnel-gre"] += 1
    inject.append((ts, lt, data, inner, end - inner, INNER))


_BY_ETHERTYPE = {0x6558: link.LINKTYPE_ETHERNET, 0x0800: link.LINKTYPE_IPV4, 0x86DD: link.LINKTYPE_IPV6}
