"""Streaming capture readers: pcap and pcapng, plain or gzip-compressed.

A reader never holds more than one read chunk (2 MiB) plus the record that straddles two chunks. It
yields one tuple per packet, ``(ts_ns, linktype, buf, offset, caplen, wirelen)``: the packet's bytes
are ``buf[offset:offset + caplen]`` inside the chunk, so nothing is copied per packet.

Formats:
- pcap (https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcap/): both byte orders, microsecond
  (magic 0xA1B2C3D4) and nanosecond (0xA1B23C4D) timestamps, any snaplen.
- pcapng (draft-ietf-opsawg-pcapng): Section Header (4.1), Interface Description (4.2) with
  ``if_tsresol`` and ``if_tsoffset``, Enhanced Packet (4.3), Simple Packet (4.4), the obsolete Packet
  Block; several sections and interfaces per file; other blocks are skipped and counted.

Damage never raises once the file is known to be a capture: a cut record, a corrupt length or a
block of unknown shape becomes a warning in :attr:`CaptureReader.warnings`, and the reader keeps
everything before it (resynchronising on pcap records where it can).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from dissect.errors import CaptureError

CHUNK = 2 << 20
# No real link layer frame is this long; a larger record length means the file is corrupt.
MAX_RECORD = 16 << 20

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
PCAPNG_SHB = 0x0A0D0D0A
BYTE_ORDER_MAGIC = 0x1A2B3C4D

Packet = tuple[int, int, bytes, int, int, int]

# Warning kinds (keys of CaptureReader.warnings); summary.json lists them with their counts.
W_TRUNCATED = "truncated-file"
W_CORRUPT = "corrupt-record"
W_SNAPLEN = "snaplen-cut-packets"
W_UNKNOWN_BLOCK = "pcapng-unknown-block"
W_BAD_INTERFACE = "pcapng-bad-interface"
W_BAD_TIMESTAMP = "invalid-timestamp"
W_UNKNOWN_SECRETS = "pcapng-unknown-secrets"  # a Decryption Secrets Block of a type other than TLS
#: Every warning kind of the reader (docs/REPORTS.md, "Anomaly and warning kinds").
WARNINGS: tuple[str, ...] = (W_TRUNCATED, W_CORRUPT, W_SNAPLEN, W_UNKNOWN_BLOCK, W_BAD_INTERFACE, W_BAD_TIMESTAMP,
                             W_UNKNOWN_SECRETS)
SECRETS_TLS_KEY_LOG = 0x544C534B  # "TLSK": an NSS key log (pcapng 4.7)


class CaptureReader:
    """Iterate over the packets of one capture file.

    >>> r = CaptureReader("captures/ws_basic.pcap")
    >>> for ts, linktype, buf, off, caplen, wirelen in r: ...
    >>> r.warnings   # Counter of warning kinds
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.warnings: Counter[str] = Counter()
        self.warning_details: list[tuple[str, str]] = []  # (kind, detail)
        self.format = ""
        self.nanosecond = False  # any timestamp source finer than a microsecond
        self.link_types: Counter[int] = Counter()
        self.packets = 0
        # Called with the text of each TLS key log found in a Decryption Secrets Block.
        self.on_tls_keys: Callable[[bytes], Any] | None = None
        self.tls_key_logs = 0
        self.bytes_read = 0  # position in the (decompressed) stream, for progress
        try:
            self.size = os.path.getsize(path)
            raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in __iter__/close
        except OSError as e:
            raise CaptureError(f"{path}: cannot open: {e.strerror or e}") from None
        head = raw.read(4)
        self._compressed = head[:2] == b"\x1f\x8b"
        raw.seek(0)
        self._raw = raw
        self._header_rest = b""  # the file header after the magic, read (whole) here
        self._pcap_unpack: Callable[[bytes, int], tuple[int, ...]] = struct.Struct("<IIII").unpack_from
        self._pcap_snaplen = 262144
        self._f: Any = gzip.GzipFile(fileobj=raw, mode="rb") if self._compressed else raw
        try:
            self._magic = self._f.read(4)
        except (OSError, EOFError) as e:
            raise CaptureError(f"{path}: cannot read: {e}") from None
        if self._magic in PCAP_MAGICS:
            self.format = "pcap"
            self.nanosecond = PCAP_MAGICS[self._magic][1] == 1
            self._header_rest = self._read_header(20, "pcap file header")
        elif len(self._magic) == 4 and struct.unpack("<I", self._magic)[0] == PCAPNG_SHB:
            self.format = "pcapng"
            self._header_rest = self._read_header(8, "pcapng section header")
            if self._header_rest[4:8] not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                self.close()
                raise CaptureError(f"{path}: not a pcapng capture (byte-order magic "
                                   f"{self._header_rest[4:8].hex()} in the section header)")
            self.nanosecond = self._peek_pcapng_resolution()
        else:
            self.close()
            if not self._magic:
                raise CaptureError(f"{path}: empty file, not a capture")
            raise CaptureError(f"{path}: not a pcap or pcapng capture (magic {self._magic.hex()})")

    def _read_header(self, n: int, what: str) -> bytes:
        """The ``n`` bytes of the file header after the magic; :class:`CaptureError` when the file
        ends (or cannot be read) before them: no packet can follow a cut file header."""
        try:
            rest = self._f.read(n)
        except (OSError, EOFError, zlib.error) as e:
            rest, why = b"", str(e)
        else:
            why = ""
        if len(rest) < n:
            self.close()
            got = 4 + len(rest)
            raise CaptureError(f"{self.path}: " + (f"cannot read the {what} ({why})" if why else
                               f"file ends inside the {what} ({got} of {4 + n} bytes), not a capture"))
        return bytes(rest)

    def _peek_pcapng_resolution(self) -> bool:
        """Whether any interface of the file's first section has sub-microsecond timestamps, read
        from the blocks before the first packet, so writers know the precision up front."""
        try:
            with open(self.path, "rb") as raw:
                f: Any = gzip.GzipFile(fileobj=raw) if self._compressed else raw
                head = f.read(1 << 20)
        except (OSError, EOFError, zlib.error):
            return False
        if len(head) < 12:
            return False
        endian = ">" if head[8:12] == b"\x1a\x2b\x3c\x4d" else "<"
        off, fine = 0, False
        while off + 12 <= len(head):
            btype, blen = struct.unpack_from(endian + "II", head, off)
            if blen < 12 or off + blen > len(head) or btype in (2, 3, 6):
                break
            if btype == 1:
                _lt, mul, div, _o, _s = self._idb(head, off, blen, endian)
                fine = fine or mul < 1000 or div > 1
            off += blen
        return fine

    @property
    def compressed(self) -> bool:
        """Whether the file is gzip-compressed (then :attr:`bytes_read` counts uncompressed bytes)."""
        return self._compressed

    @property
    def position(self) -> int:
        """Bytes of the file consumed so far (compressed bytes for .gz), for progress bars."""
        if self._compressed:
            try:
                return self._raw.tell()
            except (OSError, ValueError):
                return self.size
        return self.bytes_read

    def close(self) -> None:
        self._f.close()
        self._raw.close()

    def warn(self, kind: str, detail: str | None = None) -> None:
        self.warnings[kind] += 1
        if detail and len(self.warning_details) < 20:
            self.warning_details.append((kind, f"{self.path}: {detail}"))

    def _chunks(self) -> Iterator[bytes]:
        if self._compressed:
            yield from self._gzip_chunks()
            return
        read = self._f.read
        while True:
            try:
                chunk = read(CHUNK)
            except OSError as e:
                self.warn(W_TRUNCATED, f"read error ({e})")
                return
            if not chunk:
                return
            yield chunk

    def _gzip_chunks(self) -> Iterator[bytes]:
        # GzipFile.read(n) loses what it decompressed when the stream is cut short, so gather
        # small read1() pieces: a cut file keeps everything up to the cut.
        read1 = self._f.read1
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                piece = read1(1 << 16)
            except (OSError, EOFError, zlib.error) as e:
                self.warn(W_TRUNCATED, f"compressed stream ends early ({e})")
                piece = b""
                if parts:
                    yield b"".join(parts)
                return
            if not piece:
                if parts:
                    yield b"".join(parts)
                return
            parts.append(piece)
            size += len(piece)
            if size >= CHUNK:
                yield b"".join(parts)
                parts, size = [], 0

    def __iter__(self) -> Iterator[Packet]:
        try:
            if self.format == "pcap":
                yield from self._pcap()
            else:
                yield from self._pcapng()
        finally:
            self.close()

    # -- pcap ---------------------------------------------------------------------------------------

    # The record walk of a pcap file is _pcap below, and its compiled twin (dissect/compiled, driven
    # by the pipeline) made of the same pieces: pcap_start, chunks, pcap_resync, pcap_chunk_done,
    # pcap_bad_timestamp and pcap_end.

    max_record = MAX_RECORD  # a record longer than this is a corrupt header (the compiled walk reads it here)

    def pcap_start(self) -> tuple[bool, int, int, int]:
        """pcap: the reading starts; the file header's byte order (True: big-endian), the multiplier
        from its ticks to ns, its snaplen and link type."""
        endian, mult = PCAP_MAGICS[self._magic]
        hdr = self._header_rest  # read (whole) when the file was opened
        self.bytes_read = 24
        _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack(endian + "HHiIII", hdr)
        self._pcap_unpack = struct.Struct(endian + "IIII").unpack_from
        self._pcap_snaplen = snaplen or 262144
        return endian == ">", mult, self._pcap_snaplen, network & 0xFFFF  # upper bits carry FCS information

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes in chunks of :data:`CHUNK` (decompressed for .gz)."""
        return self._chunks()

    def pcap_resync(self, data: bytes, off: int, last_sec: int) -> int:
        """pcap: a corrupt record header at ``off`` (counted); where the next plausible record
        starts, or -1."""
        new = self._resync_pcap(data, off + 1, self._pcap_unpack, self._pcap_snaplen, last_sec)
        self.warn(W_CORRUPT, f"corrupt record header at byte {self.bytes_read + off}")
        return new

    def pcap_chunk_done(self, linktype: int, count: int, cut: int, consumed: int) -> None:
        """pcap: a chunk was walked: ``count`` records (``cut`` by the snaplen), ``consumed`` bytes."""
        self.packets += count
        self.link_types[linktype] += count
        if cut:
            self.warnings[W_SNAPLEN] += cut
        self.bytes_read += consumed

    def pcap_bad_timestamp(self) -> None:
        """pcap: a whole record whose fraction of a second is out of range."""
        self.warnings[W_BAD_TIMESTAMP] += 1

    def pcap_end(self, pending: int) -> None:
        """pcap: the file ended with ``pending`` bytes of an incomplete record."""
        if pending:
            self.warn(W_TRUNCATED, f"last record cut short after {pending} bytes")

    def _pcap(self) -> Iterator[Packet]:
        _big, mult, _snaplen, linktype = self.pcap_start()
        frac_limit = 1_000_000_000 // mult  # a fraction of a second must stay below this
        unpack_from = self._pcap_unpack
        pending = b""
        last_sec = -1
        for chunk in self._chunks():
            data = pending + chunk if pending else chunk
            n = len(data)
            off = 0
            count = 0
            cut = 0
            while off + 16 <= n:
                sec, frac, incl, orig = unpack_from(data, off)
                if incl > MAX_RECORD or (incl > orig and orig):
                    new = self.pcap_resync(data, off, last_sec)
                    if new < 0:
                        off = n  # nothing plausible in this chunk: drop it
                        break
                    off = new
                    continue
                end = off + 16 + incl
                if end > n:
                    break
                if incl < orig:
                    cut += 1
                if frac >= frac_limit:  # the record is whole; only its timestamp is odd
                    self.pcap_bad_timestamp()
                last_sec = sec
                count += 1
                yield sec * 1_000_000_000 + frac * mult, linktype, data, off + 16, incl, orig
                off = end
            self.pcap_chunk_done(linktype, count, cut, off)
            pending = data[off:]
        self.pcap_end(len(pending))

    @staticmethod
    def _resync_pcap(data: bytes, start: int, unpack_from: Callable[[bytes, int], tuple[int, ...]],
                     snaplen: int, last_sec: int) -> int:
        """Find the next plausible record header after corruption, or -1."""
        n = len(data)
        for off in range(start, n - 16):
            sec, frac, incl, orig = unpack_from(data, off)
            if (
                incl <= snaplen
                and incl <= orig < MAX_RECORD
                and frac < 1_000_000_000
                and (last_sec < 0 or abs(sec - last_sec) < 86400)
                and off + 16 + incl <= n
            ):
                # Confirm with the record that follows, when there is one.
                nxt = off + 16 + incl
                if nxt + 16 > n:
                    return off
                s2, f2, i2, o2 = unpack_from(data, nxt)
                if i2 <= snaplen and i2 <= o2 and abs(s2 - sec) < 86400:
                    return off
        return -1

    # -- pcapng -------------------------------------------------------------------------------------

    # The block walk of a pcapng file is _pcapng below, and its compiled twin (dissect/compiled's
    # PcapngWalk, driven by the pipeline) made of the same pieces: the common block (an Enhanced
    # Packet Block of a known interface, whole in the chunk) walked inline, every other block by
    # pcapng_block; pcapng_start, chunks, pcapng_state, pcapng_counted, pcapng_chunk_done and
    # pcapng_end around them.

    def pcapng_start(self) -> bytes:
        """pcapng: the reading starts; the bytes read already (the first section header's start)."""
        self._ng_endian = "<"
        # Per interface of the current section: (linktype, ticks->ns multiplier, divisor, offset ns, snaplen)
        self._ng_ifaces: list[tuple[int, int, int, int, int]] = []
        self._ng_first = True
        self._ng_consumed = -4  # the magic already read is in the bytes returned
        self._ng_hdr = struct.Struct("<II")
        self._ng_epb = struct.Struct("<IIIII")
        return self._magic + self._header_rest

    def pcapng_state(self) -> tuple[bool, list[tuple[int, int, int, int, int]]]:
        """pcapng: the current section's byte order (True: big-endian) and interfaces."""
        return self._ng_endian == ">", self._ng_ifaces

    def pcapng_counted(self, link_types: list[tuple[int, int]], cut: int) -> None:
        """pcapng: common packets walked since the last call: ``(linktype, packets)`` in the order
        each link type was first met, ``cut`` of them by the snaplen."""
        for lt, count in link_types:
            self.packets += count
            self.link_types[lt] += count
        if cut:
            self.warnings[W_SNAPLEN] += cut

    def pcapng_chunk_done(self, consumed: int) -> None:
        """pcapng: ``consumed`` bytes of the chunk walked (the rest starts a block cut by the chunk's end)."""
        self.bytes_read += consumed
        self._ng_consumed += consumed

    def pcapng_end(self, pending: int) -> None:
        """pcapng: the file ended with ``pending`` bytes of an incomplete block."""
        if pending:
            self.warn(W_TRUNCATED, f"last block cut short after {pending} bytes")

    def pcapng_block(self, data: bytes, off: int, n: int) -> tuple[int, Packet | None]:  # noqa: C901 - one case per block type
        """pcapng: the block at ``off`` of ``data`` (``off + 12 <= n``), any block. Returns where the
        next block starts and the packet this one holds (or None); -1: the block runs past ``n``
        (read on), -2: the reading stops here (a corrupt block, said)."""
        consumed = self._ng_consumed
        if self._ng_first or data[off : off + 4] == b"\x0a\x0d\x0d\x0a":
            # A section header: learn this section's byte order from its magic.
            bom = data[off + 8 : off + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                self.warn(W_CORRUPT, f"section header with bad byte-order magic at byte {consumed + off}")
                self.bytes_read += off
                return -2, None
            self._ng_endian = endian
            self._ng_hdr = struct.Struct(endian + "II")
            self._ng_epb = struct.Struct(endian + "IIIII")
            self._ng_ifaces = []
            self._ng_first = False
        endian = self._ng_endian
        ifaces = self._ng_ifaces
        btype, blen = self._ng_hdr.unpack_from(data, off)
        if blen < 12 or blen % 4 or blen > MAX_RECORD:
            # pcapng has no record marker to resynchronise on: stop, keeping what was read.
            self.warn(W_CORRUPT, f"block length {blen} at byte {consumed + off}; reading stopped")
            self.bytes_read += off
            return -2, None
        end = off + blen
        if end > n:
            return -1, None
        packet: Packet | None = None
        if btype == 6:  # Enhanced Packet Block
            if blen < 32:
                self.warn(W_CORRUPT, "enhanced packet block too short")
            else:
                iid, hi, lo, incl, orig = self._ng_epb.unpack_from(data, off + 8)
                if iid >= len(ifaces) or 28 + incl > blen:
                    self.warn(W_BAD_INTERFACE if iid >= len(ifaces) else W_CORRUPT,
                              f"packet block at byte {consumed + off}")
                else:
                    lt, mul, div, tsoff, _snap = ifaces[iid]
                    ticks = (hi << 32) | lo
                    ts = (ticks * mul if div == 1 else ticks * mul // div) + tsoff
                    if incl < orig:
                        self.warnings[W_SNAPLEN] += 1
                    self.packets += 1
                    self.link_types[lt] += 1
                    packet = ts, lt, data, off + 28, incl, orig
        elif btype == 1:  # Interface Description Block
            ifaces.append(self._idb(data, off, blen, endian))
        elif btype == 10:  # Decryption Secrets Block (pcapng 4.7)
            self._secrets(data, off, blen, endian)
        elif btype == 3:  # Simple Packet Block: no timestamp, interface 0
            if ifaces and blen >= 16:
                (orig,) = struct.unpack_from(endian + "I", data, off + 8)
                lt, _m, _d, _o, snap = ifaces[0]
                incl = min(orig, blen - 16, snap or orig)
                self.packets += 1
                self.link_types[lt] += 1
                packet = 0, lt, data, off + 12, incl, orig
            else:
                self.warn(W_BAD_INTERFACE, "simple packet block without an interface")
        elif btype == 2:  # obsolete Packet Block
            if blen < 32:
                self.warn(W_CORRUPT, "packet block too short")
                return end, None
            iid, _drops, hi, lo, incl, orig = struct.unpack_from(endian + "HHIIII", data, off + 8)
            if iid < len(ifaces) and 28 + incl <= blen:
                lt, mul, div, tsoff, _snap = ifaces[iid]
                ticks = (hi << 32) | lo
                ts = (ticks * mul if div == 1 else ticks * mul // div) + tsoff
                self.packets += 1
                self.link_types[lt] += 1
                packet = ts, lt, data, off + 28, incl, orig
            else:
                self.warn(W_BAD_INTERFACE, "packet block with an unknown interface")
        elif btype not in (PCAPNG_SHB, 4, 5, 0x80000001, 7, 9, 0x0BAD, 0x40000BAD):
            # 4 name resolution, 5 statistics, 7 IRIG, 9 systemd journal, custom blocks:
            # nothing dissect uses; anything else is unknown.
            self.warnings[W_UNKNOWN_BLOCK] += 1
        return end, packet

    def _pcapng(self) -> Iterator[Packet]:
        pending = self.pcapng_start()
        link_types = self.link_types
        warnings = self.warnings
        block = self.pcapng_block
        hdr, epb, ifaces = self._ng_hdr, self._ng_epb, self._ng_ifaces
        for chunk in self._chunks():
            data = pending + chunk
            n = len(data)
            off = 0
            while off + 12 <= n:
                # The common block inline: an Enhanced Packet Block of a known interface, whole. (A
                # section header's type reads 0x0A0D0D0A in either byte order: never 6.)
                btype, blen = hdr.unpack_from(data, off)
                if btype == 6 and 32 <= blen <= MAX_RECORD and not blen % 4 and off + blen <= n:
                    iid, hi, lo, incl, orig = epb.unpack_from(data, off + 8)
                    if iid < len(ifaces) and 28 + incl <= blen:
                        lt, mul, div, tsoff, _snap = ifaces[iid]
                        ticks = (hi << 32) | lo
                        ts = (ticks * mul if div == 1 else ticks * mul // div) + tsoff
                        if incl < orig:
                            warnings[W_SNAPLEN] += 1
                        self.packets += 1
                        link_types[lt] += 1
                        yield ts, lt, data, off + 28, incl, orig
                        off += blen
                        continue
                nxt, packet = block(data, off, n)  # any other block
                if nxt == -2:
                    return
                hdr, epb, ifaces = self._ng_hdr, self._ng_epb, self._ng_ifaces
                if nxt == -1:
                    break
                off = nxt
                if packet is not None:
                    yield packet
            self.pcapng_chunk_done(off)
            pending = data[off:]
        self.pcapng_end(len(pending))

    def _secrets(self, data: bytes, off: int, blen: int, endian: str) -> None:
        """Decryption Secrets Block: secrets type 0x544C534B ("TLSK") holds an NSS key log, handed
        to ``on_tls_keys`` at once (it precedes the packets that need it); other types are kept."""
        if blen < 20:
            self.warn(W_CORRUPT, "decryption secrets block too short")
            return
        stype, slen = struct.unpack_from(endian + "II", data, off + 8)
        if 16 + slen + 4 > blen:
            self.warn(W_CORRUPT, "decryption secrets block length runs past the block")
            return
        if stype == SECRETS_TLS_KEY_LOG:
            self.tls_key_logs += 1
            if self.on_tls_keys is not None:
                self.on_tls_keys(bytes(data[off + 16 : off + 16 + slen]))
        else:
            self.warnings[W_UNKNOWN_SECRETS] += 1

    def _idb(self, data: bytes, off: int, blen: int, endian: str) -> tuple[int, int, int, int, int]:
        """Interface Description Block (pcapng 4.2): link type, if_tsresol (9), if_tsoffset (14)."""
        if blen < 20:
            # Too short to name a link type: keep the interface's place, its packets are unknown.
            self.warn(W_BAD_INTERFACE, "interface description block too short")
            return 0xFFFF, 1000, 1, 0, 0
        lt, _res, snap = struct.unpack_from(endian + "HHI", data, off + 8)
        # Timestamps are ticks of 10^-6 s unless if_tsresol says otherwise.
        mul, div, tsoff = 1000, 1, 0
        p, end = off + 16, off + blen - 4
        while p + 4 <= end:
            code, length = struct.unpack_from(endian + "HH", data, p)
            if code == 0:
                break
            if p + 4 + length > end:
                self.warn(W_CORRUPT, "interface option runs past its block")
                break
            val = data[p + 4 : p + 4 + length]
            if code == 9 and length >= 1:
                r = val[0]
                if r & 0x80:  # 2^-n seconds
                    mul, div = 1_000_000_000, 1 << (r & 0x7F)
                else:
                    exp = r & 0x7F
                    if exp <= 9:
                        mul, div = 10 ** (9 - exp), 1
                    else:
                        mul, div = 1, 10 ** (exp - 9)
            elif code == 14 and length == 8:
                (secs,) = struct.unpack(endian + "q", val)
                tsoff = secs * 1_000_000_000
            p += 4 + ((length + 3) & ~3)
        return lt, mul, div, tsoff, snap
