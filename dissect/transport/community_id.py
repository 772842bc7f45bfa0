"""Community ID v1 (corelight/community-id-spec): one string naming a flow the way Zeek,
Suricata and Arkime name it, so dissect's sessions join their records.

``1:`` + base64(SHA-1(seed (2 bytes, big-endian) + the lower endpoint's address + the other
address + the IP protocol number + one zero byte + the two ports in the same order)), where the
"lower" endpoint is the one with the smaller address, or on equal addresses the smaller port.
Addresses are the packed 4 or 16 bytes; ports are big-endian 16-bit numbers.
"""

from __future__ import annotations

import base64
import hashlib
import struct

TCP = 6
UDP = 17


def community_id(src: bytes, sport: int, dst: bytes, dport: int, proto: int, seed: int = 0) -> str:
    """The Community ID v1 string of a flow between packed addresses ``src`` and ``dst``."""
    if (src, sport) > (dst, dport):
        src, sport, dst, dport = dst, dport, src, sport
    data = struct.pack("!H", seed) + src + dst + struct.pack("!BxHH", proto, sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")
