"""Rotated capture sets, as ``tcpdump -C``/``-G`` or ``editcap -c`` leave a long capture: a capture cut
into files of ``per`` packets each. pcap input gives pcap files (timestamps kept to the nanosecond);
pcapng input gives pcapng files, each starting with the Section Header and every Interface
Description seen so far, other blocks (Decryption Secrets among them) kept in the file where they
come."""

from __future__ import annotations

import struct
from pathlib import Path

from dissect.capture.reader import CaptureReader

_PACKET_BLOCKS = {0x00000006, 0x00000003, 0x00000002}  # enhanced, simple, obsolete packet blocks


def rotate(src: str | Path, out_dir: str | Path, per: int, prefix: str = "") -> list[str]:
    """Cut ``src`` into files of ``per`` packets in ``out_dir``; their paths, in order."""
    src, out_dir = Path(src), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = prefix or src.stem
    data = src.read_bytes()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        parts = _pcapng_parts(data, per)
        ext = ".pcapng"
    else:
        parts = _pcap_parts(src, per)
        ext = ".pcap"
    paths = []
    for i, part in enumerate(parts):
        p = out_dir / f"{name}_{i:03d}{ext}"
        p.write_bytes(part)
        paths.append(str(p))
    return paths


def _pcap_parts(src: Path, per: int) -> list[bytes]:
    reader = CaptureReader(str(src))
    parts: list[bytes] = []
    current: list[bytes] = []
    link = None
    for ts, lt, buf, off, caplen, wirelen in reader:
        if link is None:
            link = lt
        assert lt == link, "one link type per pcap"
        current.append(struct.pack("<IIII", ts // 1_000_000_000, ts % 1_000_000_000, caplen, wirelen)
                       + bytes(buf[off : off + caplen]))
        if len(current) == per:
            parts.append(b"".join(current))
            current = []
    reader.close()
    if current or not parts:
        parts.append(b"".join(current))
    header = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, link or 1)
    return [header + p for p in parts]


def _pcapng_parts(data: bytes, per: int) -> list[bytes]:
    endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    head: list[bytes] = []  # the section header and interface descriptions seen so far
    parts: list[bytes] = []
    current: list[bytes] = []
    packets = 0
    pos = 0
    while pos + 8 <= len(data):
        kind, length = struct.unpack_from(endian + "II", data, pos)
        block = data[pos : pos + length]
        pos += length
        if kind == 0x0A0D0D0A:
            head = [block]
            current.append(block)
        elif kind == 0x00000001:
            head.append(block)
            current.append(block)
        else:
            current.append(block)
            if kind in _PACKET_BLOCKS:
                packets += 1
                if packets == per:
                    parts.append(b"".join(current))
                    current = list(head)
                    packets = 0
    if packets or not parts:
        parts.append(b"".join(current))
    return parts


def secrets_apart(src: str | Path, out_dir: str | Path) -> tuple[str, str]:
    """A pcapng capture as two files: its Decryption Secrets Blocks alone (no packet), and the rest."""
    data = Path(src).read_bytes()
    endian = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    head: list[bytes] = []
    secrets: list[bytes] = []
    rest: list[bytes] = []
    pos = 0
    while pos + 8 <= len(data):
        kind, length = struct.unpack_from(endian + "II", data, pos)
        block = data[pos : pos + length]
        pos += length
        (head if kind in (0x0A0D0D0A, 0x00000001) else secrets if kind == 0x0000000A else rest).append(block)
    assert secrets, "no Decryption Secrets Block"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    a, b = out / "secrets.pcapng", out / "packets.pcapng"
    a.write_bytes(b"".join(head + secrets))
    b.write_bytes(b"".join(head + rest))
    return str(a), str(b)
