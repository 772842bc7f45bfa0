"""A small, independent model of pcap and pcapng files for the mutation fuzzer.

It parses a *well-formed* capture (the corpus) into records that mutators can drop, duplicate,
reorder, splice and edit, and writes them back, remembering where every length field landed so
byte-level mutators can damage exactly those. It deliberately shares no code with
:mod:`dissect.capture.reader`: a bug there must not hide itself here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\x3c\x4d": ">",
}
SHB = 0x0A0D0D0A
EPB, SPB, OPB, IDB = 6, 3, 2, 1


@dataclass
class Record:
    """One pcap record or one pcapng block.

    ``data`` is the packet for pcap records and pcapng packet blocks (EPB, SPB, obsolete PB);
    ``head`` is everything of the record/block before the packet (pcap: ts_sec, ts_frac; pcapng
    EPB: interface, ts_hi, ts_lo; other blocks: the whole body) and ``tail`` what follows the
    packet (pcapng options). ``orig`` is the original (wire) length; None means len(data).
    ``linktype`` is what the packet's interface says (-1 when not a packet).
    """

    btype: int  # pcap: -1; pcapng: the block type
    head: bytes
    data: bytes = b""
    tail: bytes = b""
    orig: int | None = None
    linktype: int = -1
    endian: str = "<"
    raw: bool = False  # pcapng: write ``head`` as the whole body whatever the type (damaged blocks)

    @property
    def is_packet(self) -> bool:
        return self.btype in (-1, EPB, SPB, OPB) and not self.raw

    def copy(self) -> Record:
        return Record(self.btype, self.head, self.data, self.tail, self.orig, self.linktype, self.endian, self.raw)


@dataclass
class Capture:
    fmt: str  # "pcap" or "pcapng"
    header: bytes  # pcap: the 24-byte file header; pcapng: b"" (the SHB is a record)
    records: list[Record] = field(default_factory=list)
    endian: str = "<"

    def copy(self) -> Capture:
        return Capture(self.fmt, self.header, [r.copy() for r in self.records], self.endian)

    @property
    def packets(self) -> list[int]:
        """Indices of the records that hold a packet."""
        return [i for i, r in enumerate(self.records) if r.is_packet]


@dataclass
class Layout:
    """Where the serialiser put things: byte offsets of each record and its length fields."""

    record_starts: list[int] = field(default_factory=list)
    # (offset, size in bytes, endian, what) of every length field: pcap incl/orig, pcapng block
    # total lengths (front and trailer), EPB captured/original lengths.
    length_fields: list[tuple[int, int, str, str]] = field(default_factory=list)
    # (start, end) of every packet's bytes in the file.
    packet_spans: list[tuple[int, int]] = field(default_factory=list)


def parse(raw: bytes) -> Capture:
    """Parse a well-formed pcap or pcapng file (raises ValueError otherwise)."""
    if raw[:4] in PCAP_MAGICS:
        return _parse_pcap(raw)
    if len(raw) >= 12 and struct.unpack_from("<I", raw)[0] == SHB:
        return _parse_pcapng(raw)
    raise ValueError("not a pcap or pcapng file")


def _parse_pcap(raw: bytes) -> Capture:
    e = PCAP_MAGICS[raw[:4]]
    linktype = struct.unpack_from(e + "I", raw, 20)[0] & 0xFFFF
    cap = Capture("pcap", raw[:24], endian=e)
    off = 24
    while off + 16 <= len(raw):
        sec, frac, incl, orig = struct.unpack_from(e + "IIII", raw, off)
        data = raw[off + 16 : off + 16 + incl]
        if len(data) < incl:
            break
        cap.records.append(Record(-1, struct.pack(e + "II", sec, frac), data, b"", orig, linktype, e))
        off += 16 + incl
    return cap


def _parse_pcapng(raw: bytes) -> Capture:
    cap = Capture("pcapng", b"")
    off = 0
    e = "<"
    ifaces: list[int] = []
    while off + 12 <= len(raw):
        if raw[off : off + 4] == b"\x0a\x0d\x0d\x0a":
            e = ">" if raw[off + 8 : off + 12] == b"\x1a\x2b\x3c\x4d" else "<"
            ifaces = []
        btype, blen = struct.unpack_from(e + "II", raw, off)
        if blen < 12 or off + blen > len(raw):
            break
        body = raw[off + 8 : off + blen - 4]
        if btype == IDB:
            ifaces.append(struct.unpack_from(e + "H", body)[0])
        if btype == EPB and len(body) >= 20:
            iid, _hi, _lo, incl, orig = struct.unpack_from(e + "IIIII", body)
            lt = ifaces[iid] if iid < len(ifaces) else -1
            pad = (-incl) % 4
            cap.records.append(Record(EPB, body[:12], body[20 : 20 + incl], body[20 + incl + pad :], orig, lt, e))
        elif btype == SPB and len(body) >= 4:
            (orig,) = struct.unpack_from(e + "I", body)
            lt = ifaces[0] if ifaces else -1
            incl = min(orig, len(body) - 4)
            cap.records.append(Record(SPB, b"", body[4 : 4 + incl], b"", orig, lt, e))
        else:
            cap.records.append(Record(btype, body, endian=e))
        off += blen
    return cap


def serialize(cap: Capture) -> tuple[bytes, Layout]:
    """The file's bytes, and where its records and length fields are."""
    out = bytearray(cap.header)
    lay = Layout()
    for r in cap.records:
        start = len(out)
        lay.record_starts.append(start)
        e = r.endian
        orig = len(r.data) if r.orig is None else r.orig
        if cap.fmt == "pcap":
            out += r.head + struct.pack(e + "II", len(r.data), orig)
            lay.length_fields.append((start + 8, 4, e, "pcap-incl"))
            lay.length_fields.append((start + 12, 4, e, "pcap-orig"))
            lay.packet_spans.append((len(out), len(out) + len(r.data)))
            out += r.data
            continue
        pad = b"\0" * ((-len(r.data)) % 4)
        if r.raw:
            body = r.head + b"\0" * ((-len(r.head)) % 4)
        elif r.btype == EPB:
            body = r.head + struct.pack(e + "II", len(r.data), orig) + r.data + pad + r.tail
            lay.length_fields.append((start + 20, 4, e, "epb-incl"))
            lay.length_fields.append((start + 24, 4, e, "epb-orig"))
            lay.packet_spans.append((start + 28, start + 28 + len(r.data)))
        elif r.btype == SPB:
            body = struct.pack(e + "I", orig) + r.data + pad
            lay.length_fields.append((start + 8, 4, e, "spb-orig"))
            lay.packet_spans.append((start + 12, start + 12 + len(r.data)))
        else:
            body = r.head + b"\0" * ((-len(r.head)) % 4)
        total = 12 + len(body)
        out += struct.pack(e + "II", r.btype, total) + body + struct.pack(e + "I", total)
        lay.length_fields.append((start + 4, 4, e, "block-length"))
        lay.length_fields.append((start + total - 4, 4, e, "block-trailer"))
    return bytes(out), lay


# -- packets: where the IP header, the TCP header and the TCP payload are ----------------------------


@dataclass
class TcpSpan:
    ip: int  # offset of the IP header in the frame
    v6: bool
    tcp: int  # offset of the TCP header
    payload: int  # offset of the TCP payload
    end: int  # end of the TCP payload (per the IP length, clipped to the frame)


def l3_offset(linktype: int, frame: bytes) -> tuple[int, int] | None:
    """(ethertype, offset of the network header) for the link types of the corpus, or None."""
    if linktype == 1 and len(frame) >= 14:
        p = 12
        et = struct.unpack_from("!H", frame, p)[0]
        while et in (0x8100, 0x88A8) and p + 6 <= len(frame):
            p += 4
            et = struct.unpack_from("!H", frame, p)[0]
        return et, p + 2
    if linktype == 113 and len(frame) >= 16:
        return struct.unpack_from("!H", frame, 14)[0], 16
    if linktype == 276 and len(frame) >= 20:
        return struct.unpack_from("!H", frame, 0)[0], 20
    if linktype in (0, 108) and len(frame) >= 4:
        af = struct.unpack_from("<I", frame)[0]
        if af > 0xFFFF:
            af = struct.unpack_from(">I", frame)[0]
        return (0x0800 if af == 2 else 0x86DD), 4
    if linktype in (101, 12, 14, 228, 229) and frame:
        return (0x0800 if frame[0] >> 4 == 4 else 0x86DD), 0
    return None


def tcp_span(linktype: int, frame: bytes) -> TcpSpan | None:
    """Where the TCP segment of ``frame`` is, for IPv4/IPv6 without extension headers."""
    l3 = l3_offset(linktype, frame)
    if l3 is None:
        return None
    et, ip = l3
    if et == 0x0800 and len(frame) >= ip + 20 and frame[ip] >> 4 == 4:
        ihl = (frame[ip] & 0x0F) * 4
        if frame[ip + 9] != 6 or ihl < 20:
            return None
        total = struct.unpack_from("!H", frame, ip + 2)[0]
        tcp = ip + ihl
        end = min(len(frame), ip + total)
        v6 = False
    elif et == 0x86DD and len(frame) >= ip + 40 and frame[ip] >> 4 == 6:
        if frame[ip + 6] != 6:
            return None
        plen = struct.unpack_from("!H", frame, ip + 4)[0]
        tcp = ip + 40
        end = min(len(frame), tcp + plen)
        v6 = True
    else:
        return None
    if tcp + 20 > end:
        return None
    payload = tcp + (frame[tcp + 12] >> 4) * 4
    if payload > end:
        return None
    return TcpSpan(ip, v6, tcp, payload, end)


def replace_payload(frame: bytes, span: TcpSpan, payload: bytes) -> bytes:
    """``frame`` with its TCP payload replaced and the IP length fixed (checksums are left alone:
    dissect, like capture on an offloading NIC, does not verify them)."""
    new = bytearray(frame[: span.payload] + payload + frame[span.end :])
    if span.v6:
        struct.pack_into("!H", new, span.ip + 4, min(0xFFFF, span.payload - span.ip - 40 + len(payload)))
    else:
        struct.pack_into("!H", new, span.ip + 2, min(0xFFFF, span.payload - span.ip + len(payload)))
    return bytes(new)
