"""Link layers: find the network-layer protocol and where its header starts.

Each decoder takes ``(buf, off, end)`` (the packet is ``buf[off:end]``) and returns
``(ethertype, l3_offset)``, or ``(-1, 0)`` when the frame carries nothing dissect reads. Link types
are the LINKTYPE_ values of https://www.tcpdump.org/linktypes.html.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
_VLAN_TAGS = (0x8100, 0x88A8, 0x9100, 0x9200)  # 802.1Q, 802.1ad (QinQ) and the pre-standard ones

_u16 = struct.Struct("!H").unpack_from
_u32le = struct.Struct("<I").unpack_from

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINK_NAMES = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "EN10MB",
    LINKTYPE_RAW: "RAW",
    12: "RAW",
    14: "RAW",
    LINKTYPE_LOOP: "LOOP",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}

NONE = (-1, 0)


def ethernet(buf: bytes, off: int, end: int) -> tuple[int, int]:
    """IEEE 802.3 Ethernet II, with any number of 802.1Q / 802.1ad VLAN tags."""
    p = off + 12
    if p + 2 > end:
        return NONE
    (etype,) = _u16(buf, p)
    while etype in _VLAN_TAGS:
        p += 4
        if p + 2 > end:
            return NONE
        (etype,) = _u16(buf, p)
    return etype, p + 2


def linux_sll(buf: bytes, off: int, end: int) -> tuple[int, int]:
    """Linux cooked capture v1 (tcpdump -i any): 16-byte header, protocol at offset 14."""
    if off + 16 > end:
        return NONE
    return _u16(buf, off + 14)[0], off + 16


def linux_sll2(buf: bytes, off: int, end: int) -> tuple[int, int]:
    """Linux cooked capture v2: 20-byte header, protocol first."""
    if off + 20 > end:
        return NONE
    return _u16(buf, off)[0], off + 20


def _family(af: int) -> int:
    # AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
    if af == 2:
        return ETH_IPV4
    if af in (10, 24, 28, 30):
        return ETH_IPV6
    return -1


def bsd_null(buf: bytes, off: int, end: int) -> tuple[int, int]:
    """BSD loopback (NULL): a 4-byte address family in the capturing host's byte order."""
    if off + 4 > end:
        return NONE
    (af,) = _u32le(buf, off)
    if af > 0xFFFF:  # written big-endian
        af = int.from_bytes(buf[off : off + 4], "big")
    return _family(af), off + 4


def bsd_loop(buf: bytes, off: int, end: int) -> tuple[int, int]:
    """OpenBSD loopback (LOOP): the address family in network byte order."""
    if off + 4 > end:
        return NONE
    return _family(int.from_bytes(buf[off : off + 4], "big")), off + 4


def raw_ip(buf: bytes, off: int, end: int) -> tuple[int, int]:
    """Raw IP: the version nibble says which."""
    if off >= end:
        return NONE
    v = buf[off] >> 4
    if v == 4:
        return ETH_IPV4, off
    if v == 6:
        return ETH_IPV6, off
    return NONE


def raw_ipv4(buf: bytes, off: int, end: int) -> tuple[int, int]:
    return ETH_IPV4, off


def raw_ipv6(buf: bytes, off: int, end: int) -> tuple[int, int]:
    return ETH_IPV6, off


DECODERS: dict[int, Callable[[bytes, int, int], tuple[int, int]]] = {
    LINKTYPE_NULL: bsd_null,
    LINKTYPE_ETHERNET: ethernet,
    LINKTYPE_RAW: raw_ip,
    12: raw_ip,  # DLT_RAW as some systems write it
    14: raw_ip,
    LINKTYPE_LOOP: bsd_loop,
    LINKTYPE_LINUX_SLL: linux_sll,
    LINKTYPE_IPV4: raw_ipv4,
    LINKTYPE_IPV6: raw_ipv6,
    LINKTYPE_LINUX_SLL2: linux_sll2,
}
