"""The index pass of a split analysis (``--dask``): one capture file, read alone, gives its flow log.

:func:`index_file` reads a file with the real packet loop and a
:class:`~dissect.transport.flowsplit.LogTable` (what the flow table's decisions depend on, in order),
and notes what ties flows together above TCP, as *affinity keys* (a ``SIGHT`` event: flows sharing a
key are dissected in one task):

- an Engine.IO session spans TCP connections: every ``sid`` a connection's requests name
  (``?EIO=4&transport=polling&sid=...``, read as the Engine.IO tracker reads it) and every sid an
  open packet in its responses gives (``0{"sid":"..."}``), until the connection upgrades to a
  WebSocket (the open packet right after the 101 included);
- TLS connections (a ClientHello first): their plaintext may be Engine.IO, unknown until decrypted,
  so when there are secrets to decrypt with they all share one key (:data:`TLS_KEY`; the plan
  decides);
- another first-payload protocol with an affinity (``dissect.protocols.registry.FIRST_PAYLOAD``):
  the key it names.

A connection that started in an earlier file (no SYN in this one) is looked at from its first bytes
here: WebSocket frames or TLS records leave it alone; anything else is searched for sids as HTTP is.
Only the bytes are searched (the HTTP dissector does not run), so a sid split across two chunks is
found through a tail kept per direction; one never sent in clear (a compressed open packet) is not
found, and its connections may be dissected apart.

The file's reader statistics (packets, link types, warnings, decode counters) and the TLS secrets
it carries come back too: a split run counts them from here, once per file.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dissect import fastpaths
from dissect.capture.reader import CaptureReader
from dissect.pipeline import Pipeline
from dissect.protocols.engineio import request_query
from dissect.protocols.engineio.query import is_engineio_target
from dissect.protocols.registry import first_payload_row
from dissect.protocols.tls import KeyLog, looks_like_tls
from dissect.protocols.websocket import frames_tile
from dissect.records import C2S
from dissect.transport.flowlog import PackedLog
from dissect.transport.flowsplit import SIGHT, Event, LogConn, LogTable
from dissect.transport.limits import Limits

TLS_KEY = "\x00tls"
# Decode counters counted for dissected flows only: a split run takes them from its tasks.
TASK_COUNTERS = ("tcp-snaplen-cut",)

_REQUEST = re.compile(rb"[A-Z]{3,10} ([^ \r\n]*EIO=[^ \r\n]*) HTTP/1")
_OPEN_SID = re.compile(rb'\\?"sid\\?"\s*:\s*\\?"([^"\\]{1,256})')
_SWITCHED = re.compile(rb"HTTP/1\.[01] 101")
_TAIL = 4096  # bytes kept per direction: a request line or an open packet split across chunks


@dataclass
class FileIndex:
    """What the index pass of one file gives (module doc)."""

    path: str
    log: PackedLog | list[Event]  # packed (dissect.transport.flowlog) unless asked for as a list
    info: dict[str, Any]  # summary.json's files entry
    warnings: Counter[str] = field(default_factory=Counter)
    warning_details: list[tuple[str, str]] = field(default_factory=list)
    decode: Counter[str] = field(default_factory=Counter)
    nanosecond: bool = False
    last_ts: int = 0
    packets: int = 0
    secrets: list[str] = field(default_factory=list)  # TLS key log texts of its Decryption Secrets Blocks


class _Key:
    """What is known of one 5-tuple's bytes in this file."""

    __slots__ = ("scan", "tails", "told", "interval", "upgraded")

    def __init__(self, scan: bool) -> None:
        self.scan = scan  # still searched for sids
        self.tails = [b"", b""]
        self.told: set[str] = set()  # keys logged in the current interval
        self.interval = -1
        self.upgraded = False


class _Nothing:
    """The dissector of a connection nobody looks into."""

    __slots__ = ()

    def feed(self, direction: int, ts: int, data: bytes) -> None:
        pass

    def gap(self, direction: int, ts: int, nbytes: int) -> None:
        pass

    def finish(self, ts: int) -> None:
        pass


_NOTHING = _Nothing()


class _Search:
    """The dissector of a connection searched for Engine.IO sids."""

    __slots__ = ("sniffer", "st", "kc", "conn")

    def __init__(self, sniffer: _Sniffer, st: _Key, conn: LogConn) -> None:
        self.sniffer = sniffer
        self.st = st
        self.kc = conn.kc
        self.conn = conn

    def feed(self, direction: int, ts: int, data: bytes) -> None:
        st = self.st
        if not st.scan:
            return
        tail = st.tails[direction]
        buf = tail + data if tail else data
        if b"EIO=" in buf:
            for m in _REQUEST.finditer(buf):
                target = m.group(1).decode("latin-1")
                if is_engineio_target(target):
                    sid = request_query(target).get("sid")
                    if sid:
                        self.sniffer.sight(st, self.kc, sid)
        if b"sid" in buf:
            for m in _OPEN_SID.finditer(buf):
                self.sniffer.sight(st, self.kc, m.group(1).decode("utf-8", "replace"))
        if st.upgraded:
            st.scan = False  # the chunk after the 101 (the open packet of a WebSocket-only session) is read
            self.conn.foreign = fastpaths.INDEX_SKIPS_UNSEARCHED  # nothing more searched: counted, not reassembled
        elif _SWITCHED.search(buf):
            st.upgraded = True
        st.tails[direction] = buf[-_TAIL:]

    def gap(self, direction: int, ts: int, nbytes: int) -> None:
        self.st.tails[direction] = b""

    def finish(self, ts: int) -> None:
        pass


def _frames_or_records(data: bytes) -> bool:
    """WebSocket frames (either side) or TLS records: a connection already past HTTP."""
    if frames_tile(data, masked=True)[0] or frames_tile(data, masked=False)[0]:
        return True
    return len(data) >= 5 and 0x14 <= data[0] <= 0x17 and data[1] == 3 and data[2] <= 4


class _Sniffer:
    def __init__(self, table: LogTable) -> None:
        self.table = table
        self.keys: dict[bytes, _Key] = {}

    def attach(self, conn: LogConn, syn: bool) -> None:
        """A new flow of the log table (``syn``: it starts with a SYN, a new connection)."""
        ck = min(conn.kc, conn.ks)
        if syn:
            self.keys.pop(ck, None)
        st = self.keys.get(ck)
        if st is None:
            conn.on_first_data = self.first_data
        else:
            conn.app = _Search(self, st, conn) if st.scan else _NOTHING
            conn.app_decided = True
            conn.foreign = not st.scan and fastpaths.INDEX_SKIPS_UNSEARCHED  # (counted, not reassembled)

    def first_data(self, conn: Any, direction: int, ts: int, data: bytes) -> None:
        """A flow's first in-order bytes: what the registry would start, or (after a file's start)
        what the bytes look like."""
        affinity: str | None = None
        scan = False
        if conn.syn_ts is not None:  # the connection's start is here: its first bytes
            row = first_payload_row(direction, data)
            if row is not None and row.name == "http":
                scan = True
            elif row is not None and row.name == "tls":
                affinity = TLS_KEY
            elif row is not None and row.affinity is not None:
                key = row.affinity(data)[0]
                affinity = f"\x00{row.name}:{key}" if key else None
        elif not _frames_or_records(data):
            scan = True
        elif direction == C2S and looks_like_tls(data):
            affinity = TLS_KEY
        st = self.keys[min(conn.kc, conn.ks)] = _Key(scan)
        if affinity is not None:
            self.sight(st, conn.kc, affinity)
        if scan:
            app = _Search(self, st, conn)
            conn.app = app
            app.feed(direction, ts, data)
        else:
            conn.app = _NOTHING
            conn.foreign = fastpaths.INDEX_SKIPS_UNSEARCHED  # nobody looks into its bytes: counted, not reassembled

    def sight(self, st: _Key, kc: bytes, what: str) -> None:
        interval = self.table.intervals
        if st.interval != interval:  # told again in each interval: the flow may be a new one
            st.interval = interval
            st.told.clear()
        if what not in st.told:
            st.told.add(what)
            self.table.log.append((SIGHT, kc, what))


class _Secrets(KeyLog):
    """A key log that keeps the texts added to it (a file's Decryption Secrets Blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def add_text(self, text: str | bytes) -> int:
        if isinstance(text, (bytes, bytearray, memoryview)):
            text = bytes(text).decode("ascii", errors="replace")
        self.texts.append(text)
        return super().add_text(text)


def index_file(path: str, limits: Limits | None = None, packed: bool = True) -> FileIndex:
    """The index pass over one capture file (module doc); its log packed (not ``packed``: a list of
    the event tuples, which the tests compare)."""
    limits = limits or Limits()
    secrets = _Secrets()
    pipe = Pipeline([], limits, keylog=secrets)
    table = LogTable(pipe.outbox, limits, packed=packed)
    table.attach = _Sniffer(table).attach
    pipe.flows = table
    reader = CaptureReader(path)
    try:
        pipe.run_reader(reader)
    finally:
        reader.close()
    table.close()
    st = pipe.stats
    info = st.files[-1]
    if reader.compressed:
        info["uncompressed_bytes"] = reader.bytes_read
    decode = st.counters + pipe.ip.counters
    for name in TASK_COUNTERS:
        decode.pop(name, None)
    return FileIndex(path, table.log, info, st.warnings, st.warning_details, decode, st.nanosecond,
                     pipe.last_ts, reader.packets, secrets.texts)
