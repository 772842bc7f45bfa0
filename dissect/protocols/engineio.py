"""Engine.IO sessions over HTTP long-polling and WebSocket, and the Socket.IO packets they carry.

References (read them before changing anything here):

* Engine.IO protocol v4: socketio/engine.io-protocol, branch ``main``: "Transports", "Protocol"
  (handshake, heartbeat, upgrade) and "Packet encoding".
* Engine.IO protocol v3: same repository, branch ``v3``: "Encoding" (packet, payload),
  "Transports" (XHR, JSONP) and "Transport upgrading".
* The reference parser, engine.io-parser (5.x for v4, 2.x for v3): where the documents are silent,
  its behaviour is what real peers accept.

An Engine.IO session spans TCP connections: polling requests on one or several connections, then
perhaps a WebSocket; all of them name the session by its ``sid`` query parameter. :class:`EngineIO`
holds every session of one analysis; the HTTP layer calls :meth:`EngineIO.polling_request` and
:meth:`EngineIO.polling_response`, the WebSocket layer :meth:`EngineIOWebSocket.ws_message`.

Every Engine.IO packet becomes one ``sio_packets`` row (:class:`dissect.records.SioPacket`), with
the Socket.IO packet of a ``message`` read by :mod:`dissect.protocols.socketio`. The rows of a BINARY_EVENT /
BINARY_ACK and of its attachments are appended together once the last attachment arrived (so the
header row can say when some never came); every other row is appended as soon as it is read.
"""

from __future__ import annotations

import binascii
import json
import re
import zlib
from collections import deque
from collections.abc import Callable
from urllib.parse import unquote, unquote_plus

from dissect import fastpaths
from dissect.protocols.socketio import (
    ACK_WITHOUT_EVENT,
    ATTACHMENTS_MISSING,
    DIGITS,
    GROUP_END,
    GROUP_MORE,
    GROUP_START,
    MAX_ACK_ID_DIGITS,
    MAX_ATTACHMENTS,
    MODE_SIO,
    MODE_UNKNOWN,
    RESERVED_EVENT_NAME,
    RESERVED_EVENTS,
    SioResult,
    SocketIOState,
    join_tags,
)
from dissect.records import C2S, DIRECTION_NAMES, S2C, Handshake, Outbox, SioPacket, ms

# Packet types, Engine.IO v4 "Protocol" table (identical in v3 "Packet").
OPEN = 0
CLOSE = 1
PING = 2
PONG = 3
MESSAGE = 4
UPGRADE = 5
NOOP = 6
EIO_TYPE_NAMES = ("open", "close", "ping", "pong", "message", "upgrade", "noop")

# --- anomaly tags (kebab-case; several on one row are joined with ';') ---
EIO_BAD_TYPE = "eio-bad-type"  # packet type is not 0-6 (nor "b" for base64)
EIO_EMPTY_PACKET = "eio-empty-packet"  # zero-length packet (engine.io-parser: "parser error")
EIO_BAD_LENGTH = "eio-bad-length"  # v3 payload: no valid length prefix where one must be
EIO_TRUNCATED = "eio-truncated"  # v3 payload: length prefix runs past the end of the body
EIO_BAD_BASE64 = "eio-bad-base64"  # "b" packet whose base64 does not decode
EIO_BAD_OPEN = "eio-bad-open"  # open packet without a JSON object holding a string sid
WS_UNDECODABLE = "ws-undecodable"  # the WebSocket layer could not give us the message
OPEN_WRONG_DIRECTION = "open-wrong-direction"  # only the server sends open
PING_WRONG_DIRECTION = "ping-wrong-direction"  # v3 the client pings, v4 the server (probe: client)
PONG_WRONG_DIRECTION = "pong-wrong-direction"
UPGRADE_WRONG_DIRECTION = "upgrade-wrong-direction"  # only the client sends upgrade
UPGRADE_WITHOUT_PROBE = "upgrade-without-probe"  # upgrade not preceded by 2probe/3probe on a WS
EIO_BAD_ENCODING = "eio-bad-encoding"  # polling body whose Content-Encoding does not decode

# Bounds.
# A NamedTuple row without the Python-level __new__ (the field count is fixed by the code).
_new_row = tuple.__new__

# EngineIOWebSocket.ws_message's fast path for plain EVENTs and ACKs (tests switch it off to compare).
MAX_CLOSED_SESSIONS = 4096  # closed sessions kept for late packets naming their sid
MAX_HELD_ROWS = MAX_ATTACHMENTS + 64  # rows held while a packet's attachments arrive
MAX_LENGTH_DIGITS = 10  # v3 length prefixes: a body longer than 10**10 bytes cannot exist
MAX_INFLATED = 16 << 20  # a compressed polling body inflates to at most this (engine.io: 1 MB)

_SEPARATOR = b"\x1e"  # v4 payload record separator
_V3_PREFIX = re.compile(rb"([0-9]{1,%d}):" % MAX_LENGTH_DIGITS)
_V3_TEXT_START = re.compile(rb"[0-9]+:")
_BINARY_DIGITS = bytes.maketrans(bytes(range(10)), b"0123456789")
_JSONP_ESCAPED_NEWLINE = re.compile(r"(\\)?\\n")

# One decoded packet: (type or -1, buffer, offset of the data in the buffer, binary?, data size,
# anomaly). Text packets keep their type character at buffer[0] (offset 1) so nothing is copied.
_Pkt = tuple[int, bytes, int, bool, int, str]


# --------------------------------------------------------------------------------------------
# Payload decoding (pure functions)
# --------------------------------------------------------------------------------------------


def _v3_binary_packet(data: bytes) -> _Pkt:
    """A v3 binary packet: its first byte is the packet type (v3 "Encoding", binary)."""
    if not data:
        return (-1, data, 0, True, 0, EIO_EMPTY_PACKET)
    t = data[0]
    return (t if t <= 6 else -1, data, 1, True, len(data) - 1, "" if t <= 6 else EIO_BAD_TYPE)


def _text_packet(part: bytes, version: int | None) -> _Pkt:
    """One string-encoded packet ``<type>[<data>]``, or ``b...`` base64 binary.

    v4 "Packet encoding / HTTP long-polling": ``b<base64>`` is always a message. v3 "Payload":
    ``b<type><base64>``.
    """
    if not part:
        return (-1, part, 0, False, 0, EIO_EMPTY_PACKET)
    t = part[0] - 0x30
    if 0 <= t <= 6:
        return (t, part, 1, False, len(part) - 1, "")
    if part[0] == 0x62:  # "b"
        if version == 3:
            t = part[1] - 0x30 if len(part) > 1 else -1
            raw = part[2:]
        else:
            t = MESSAGE
            raw = part[1:]
        try:
            data = binascii.a2b_base64(raw)
        except binascii.Error:
            return (t if 0 <= t <= 6 else -1, b"", 0, True, 0, EIO_BAD_BASE64)
        if not 0 <= t <= 6:
            return (-1, data, 0, True, len(data), EIO_BAD_TYPE)
        return (t, data, 0, True, len(data), "")
    return (-1, part, 1, False, len(part) - 1, EIO_BAD_TYPE)


def split_v4(body: bytes) -> list[_Pkt]:
    """v4 polling payload: packets joined by the record separator ``\\x1e``."""
    if not body:
        return []
    return [_text_packet(part, 4) for part in body.split(_SEPARATOR)]


def utf16_prefix_end(body: bytes, start: int, units: int) -> int:
    """Byte offset where the first ``units`` UTF-16 code units of UTF-8 ``body[start:]`` end.

    v3 length prefixes count JavaScript string length (UTF-16 code units): a non-BMP character is
    4 UTF-8 bytes and 2 units. -1 when the body ends first, -2 when the count ends between the two
    halves of a surrogate pair (no byte boundary matches it).
    """
    # A unit takes at most 3 bytes (BMP: up to 3 bytes per unit; non-BMP: 4 bytes per 2 units), so
    # the window below holds the answer; a character cut at its end lies beyond it.
    chunk = body[start : start + 3 * units]
    u16 = chunk.decode("utf-8", "surrogateescape").encode("utf-16-le", "surrogatepass")
    if len(u16) < 2 * units:
        return -1
    head = u16[: 2 * units]
    if 0xD8 <= head[-1] <= 0xDB:
        return -2
    return start + len(
        head.decode("utf-16-le", "surrogatepass").encode("utf-8", "surrogateescape")
    )


def split_v3_text(body: bytes) -> list[_Pkt]:
    """v3 string payload ``<length>:<packet>...`` (v3 "Payload"), length in UTF-16 code units.

    A prefix that is not ``digits:`` ends the decoding: the rest of the body becomes one row
    tagged ``eio-bad-length``; a length past the end of the body gives a row tagged
    ``eio-truncated`` with what is there. Packets before either are kept.
    """
    out: list[_Pkt] = []
    pos = 0
    n = len(body)
    while pos < n:
        m = _V3_PREFIX.match(body, pos)
        if m is None:
            rest = body[pos:]
            out.append((-1, rest, 0, False, len(rest), EIO_BAD_LENGTH))
            break
        units = int(m.group(1))
        start = m.end()
        if units == 0:  # "0:" is an empty payload (engine.io-parser 2 encodes [] as "0:")
            pos = start
            continue
        end = start + units
        chunk = body[start:end]
        if len(chunk) != units or not chunk.isascii():
            end = utf16_prefix_end(body, start, units)
            if end == -1:
                t, buf, off, binary, size, anomaly = _text_packet(body[start:], 3)
                out.append((t, buf, off, binary, size, join_tags(anomaly, EIO_TRUNCATED)))
                break
            if end == -2:
                rest = body[pos:]
                out.append((-1, rest, 0, False, len(rest), EIO_BAD_LENGTH))
                break
            chunk = body[start:end]
        out.append(_text_packet(chunk, 3))
        pos = end
    return out


def split_v3_binary(body: bytes) -> list[_Pkt]:
    """v3 binary payload (XHR2, ``application/octet-stream``), v3 "Payload".

    Records ``<0|1><length as bytes 0-9>0xFF<packet>``: 0 = string packet (UTF-8, length in
    bytes), 1 = binary packet whose first byte is the packet type (length includes it).
    """
    out: list[_Pkt] = []
    pos = 0
    n = len(body)
    while pos < n:
        kind = body[pos]
        j = pos + 1
        while j < n and body[j] <= 9 and j - pos <= MAX_LENGTH_DIGITS:
            j += 1
        if kind > 1 or j == pos + 1 or j >= n or body[j] != 0xFF:
            rest = body[pos:]
            out.append((-1, rest, 0, kind == 1, len(rest), EIO_BAD_LENGTH))
            break
        length = int(body[pos + 1 : j].translate(_BINARY_DIGITS))
        start = j + 1
        end = start + length
        truncated = end > n
        record = body[start:end]
        if kind == 0:
            pkt = _text_packet(record, 3)
        else:
            pkt = _v3_binary_packet(record)
        if truncated:
            t, buf, off, binary, size, anomaly = pkt
            pkt = (t, buf, off, binary, size, join_tags(anomaly, EIO_TRUNCATED))
        out.append(pkt)
        pos = end
    return out


def _jsonp_response(body: bytes) -> bytes | None:
    """v3 "JSONP": ``___eio[<j>]("<payload>");`` -> the payload (None when it is not JSONP)."""
    if not body.startswith(b"___eio["):
        return None
    a = body.find(b"(")
    b = body.rfind(b")")
    if a < 0 or b <= a:
        return None
    literal = body[a + 1 : b]
    try:
        value = json.loads(literal)
    except (ValueError, UnicodeDecodeError, RecursionError):  # too deeply nested: malformed for us
        value = None
    if not isinstance(value, str):
        # python-engineio escapes only the double quotes: take the literal as it stands.
        text = literal.strip(b'"').replace(b'\\"', b'"')
        return text
    return value.encode("utf-8", "replace")


def _jsonp_request(body: bytes) -> bytes:
    """v3 "JSONP / Posting data": ``d=<url-encoded payload>`` with newlines escaped as ``\\n``."""
    text = body.decode("latin-1")
    value = ""
    for field in text.split("&"):
        key, _, val = field.partition("=")
        if key == "d":
            value = unquote_plus(val, encoding="utf-8", errors="replace")
            break
    # engine.io 3 (polling-jsonp.js onData): "\n" stands for a newline, "\\n" for a literal "\n".
    value = _JSONP_ESCAPED_NEWLINE.sub(lambda m: m.group(0) if m.group(1) else "\n", value)
    value = value.replace("\\\\n", "\\n")
    return value.encode("utf-8", "replace")


def content_decoded(body: bytes, coding: str) -> tuple[bytes, str]:
    """The body without its Content-Encoding, and an anomaly ('' when fine).

    engine.io compresses polling responses above 1 KB (``httpCompression``: gzip or deflate); the
    HTTP layer removes only the chunked transfer coding. Inflating stops at ``MAX_INFLATED``: what
    was inflated is returned, tagged ``eio-truncated``.
    """
    coding = coding.strip().lower()
    if not coding or coding == "identity" or not body:
        return body, ""
    if coding in ("gzip", "x-gzip"):
        wbits = 31
    elif coding == "deflate":
        # RFC 9110 8.4.1.2: zlib format; some servers send raw deflate, told apart by the header.
        zlib_header = len(body) > 1 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
        wbits = 15 if zlib_header else -15
    else:
        return b"", EIO_BAD_ENCODING
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, MAX_INFLATED)
    except zlib.error:
        return b"", EIO_BAD_ENCODING
    if inflater.unconsumed_tail:
        return out, EIO_TRUNCATED
    if not inflater.eof:
        return out, EIO_BAD_ENCODING
    return out, ""


def decode_payload(
    body: bytes, version: int | None, content_type: str = ""
) -> tuple[list[_Pkt], int | None]:
    """Split a polling body into packets; returns them and the version the framing showed.

    ``version`` None (no ``EIO=`` in the request): a body starting ``<digits>:`` is v3, else v4.
    """
    if not body:
        return [], version
    if content_type.startswith("application/octet-stream") and body[0] <= 1:
        return split_v3_binary(body), 3 if version is None else version
    if version is None:
        version = 3 if _V3_TEXT_START.match(body) else 4
    if version == 3:
        return split_v3_text(body), version
    return split_v4(body), version


# --------------------------------------------------------------------------------------------
# Query strings
# --------------------------------------------------------------------------------------------


def _transport(q: dict[str, str]) -> str:
    """The transport a request names, as one of the table's two values (the query is traffic:
    its text never reaches a row)."""
    return "websocket" if q.get("transport") == "websocket" else "polling"


def request_query(target: str) -> dict[str, str]:
    """The query parameters of a request-target (first occurrence of each name wins)."""
    q = target.partition("?")[2].partition("#")[0]
    out: dict[str, str] = {}
    if not q:
        return out
    for field in q.split("&"):
        key, _, value = field.partition("=")
        if key not in out:
            out[key] = unquote(value) if "%" in value else value
    return out


def _version(q: dict[str, str]) -> int | None:
    v = q.get("EIO")
    if v == "4":
        return 4
    if v == "3":
        return 3
    return None


def _path_mode(target: str) -> int:
    # The Socket.IO path is /socket.io/ unless configured otherwise: a strong hint. Elsewhere the
    # first message decides (socketio.SocketIOState.text).
    return MODE_SIO if "socket.io" in target.partition("?")[0] else MODE_UNKNOWN


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------


class _Session:
    """One Engine.IO session (one sid)."""

    __slots__ = ("sid", "version", "sio", "transport", "closed", "held", "ws", "first_tcp")

    def __init__(self, sid: str | None, version: int | None, sio: SocketIOState, first_tcp: int) -> None:
        self.sid = sid
        self.first_tcp = first_tcp  # the TCP session it was first seen on
        self.version = version
        self.sio = sio
        sio.protocol = None if version is None else version + 1
        self.transport = "polling"  # "websocket" once upgraded (or when it started there)
        self.closed = False
        # Rows of a BINARY_* packet and its attachments so far, per direction (None: nothing held).
        self.held: list[list[SioPacket] | None] = [None, None]
        self.ws: EngineIOWebSocket | None = None

    def set_version(self, version: int) -> None:
        self.version = version
        self.sio.protocol = version + 1


class EngineIO:
    """Every Engine.IO session of one analysis. Sessions span TCP connections (polling requests on
    several connections, then the WebSocket) and are tied together by their sid.

    ``app_protocols`` maps a TCP session id to the highest layer seen on it: ``engineio`` or
    ``socketio``. When a session ends its counts (``sio-acks-dropped``: events evicted from the
    bounded table of events waiting for an ACK; ``sio-acks-unanswered``: events with an ack id
    whose ACK never came) go to the outbox's counters, which reach summary.json's ``decode``.
    Under ``--jobs`` only the worker that ``reports`` a session counts it (every worker may see a
    shared polling handshake).
    """

    def __init__(self, outbox: Outbox, reports: Callable[[int, str | None], bool] | None = None) -> None:
        self.outbox = outbox
        self.reports = reports
        self.app_protocols: dict[int, str] = {}
        self._sessions: dict[str, _Session] = {}
        self._unnamed: dict[int, _Session] = {}  # sessions whose open packet has not come yet
        self._closed: deque[str] = deque()
        # Handshake GETs (no sid) awaiting their response: (TCP session, ts) -> version, transport
        self._pending_open: dict[tuple[int, int], tuple[int | None, str]] = {}
        self._ws_waiting: dict[int, EngineIOWebSocket] = {}  # WebSockets waiting for the open

    @staticmethod
    def is_engineio_target(target: str) -> bool:
        """A request-target with an ``EIO=`` query parameter (v4 "Query parameters": mandatory)."""
        return "EIO=" in target and "EIO" in request_query(target)

    # -- sessions ------------------------------------------------------------------------------

    def _new_session(self, sid: str | None, version: int | None, target: str, tcp: int) -> _Session:
        sess = _Session(sid, version, SocketIOState(self.outbox, _path_mode(target)), tcp)
        if sid is None:
            self._unnamed[id(sess)] = sess
        else:
            self._sessions[sid] = sess
        return sess

    def _session(self, sid: str, version: int | None, target: str, tcp: int) -> _Session:
        sess = self._sessions.get(sid)
        if sess is None:
            # The capture started after the handshake: the session is picked up where it is.
            sess = self._new_session(sid, version, target, tcp)
        elif sess.version is None and version is not None:
            sess.set_version(version)
        return sess

    def _name(self, sess: _Session, sid: str) -> None:
        """The open packet gave ``sess`` its sid."""
        self._unnamed.pop(id(sess), None)
        sess.sid = sid
        self._sessions[sid] = sess

    def _end_session(self, sess: _Session) -> None:
        """The session is over: held rows go out, CONNECTs never answered fail, acks are counted."""
        for d in (C2S, S2C):
            if sess.held[d] is not None:
                self._flush(sess, d, sess.sio.expect[d] > 0)
        sess.sio.close()
        if sess.sio.counters and (self.reports is None or self.reports(sess.first_tcp, sess.sid)):
            self.outbox.counters.update(sess.sio.counters)
        sess.sio.counters.clear()
        if sess.closed:
            return
        sess.closed = True
        self._unnamed.pop(id(sess), None)
        if sess.sid is not None:
            self._closed.append(sess.sid)
            if len(self._closed) > MAX_CLOSED_SESSIONS:
                old = self._closed.popleft()
                gone = self._sessions.get(old)
                if gone is not None and gone.closed:
                    del self._sessions[old]

    # -- rows ------------------------------------------------------------------------------------

    def _flush(self, sess: _Session, d: int, missing: bool) -> None:
        rows = sess.held[d]
        sess.held[d] = None
        if not rows:
            return
        if missing:
            head = rows[0]
            rows[0] = head._replace(anomaly=join_tags(head.anomaly, ATTACHMENTS_MISSING))
            sess.sio.abandon_attachments(d)
        self.outbox.sio_packets.extend(rows)

    def _deliver(self, sess: _Session, d: int, row: SioPacket, res: SioResult | None) -> None:
        if sess.closed:
            # Nothing flushes a closed session again: hold nothing (packets after close are
            # stragglers, such as the answer to a pending GET).
            self.outbox.sio_packets.append(row)
            return
        held = sess.held[d]
        if res is not None:
            if res.broken and held is not None:
                self._flush(sess, d, True)
                held = None
            g = res.group
            if g == GROUP_START:
                if held is not None:
                    self._flush(sess, d, True)
                sess.held[d] = [row]
                return
            if g == GROUP_END and held is not None:
                held.append(row)
                self._flush(sess, d, False)
                return
            if g == GROUP_MORE and held is None:  # its header was flushed (too many rows held)
                self.outbox.sio_packets.append(row)
                return
        if held is None:
            self.outbox.sio_packets.append(row)
            return
        held.append(row)
        if len(held) > MAX_HELD_ROWS:
            self._flush(sess, d, True)

    def _handshake_open(
        self, sess: _Session, tcp: int, ts_start: int, ts: int, transport: str,
        info: dict[str, object],
    ) -> None:
        parts = [f"sid={sess.sid}", f"eio={sess.version}"]
        for key in ("pingInterval", "pingTimeout"):
            if key in info:
                parts.append(f"{key}={info[key]}")
        upgrades = info.get("upgrades")
        if isinstance(upgrades, list):
            parts.append("upgrades=" + ",".join(str(u) for u in upgrades))
        if "maxPayload" in info:
            parts.append(f"maxPayload={info['maxPayload']}")
        self.outbox.handshakes.append(
            Handshake(
                tcp, "engineio", ts_start, ts, ms(ts_start, ts), True, " ".join(parts), transport
            )
        )

    def _handshake_failed(
        self, tcp: int, ts_start: int, ts: int | None, transport: str, version: int | None, why: str
    ) -> None:
        self.outbox.handshakes.append(
            Handshake(
                tcp, "engineio", ts_start, ts, ms(ts_start, ts), False,
                f"eio={version if version is not None else '?'} {why}", transport,
            )
        )

    def _open(
        self, sess: _Session, tcp: int, d: int, ts: int, transport: str, buf: bytes, off: int,
        hs_start: int | None,
    ) -> str:
        """An open packet (v4 "Handshake"); returns the row's anomaly."""
        if d == C2S:
            return OPEN_WRONG_DIRECTION
        try:
            info = json.loads(buf[off:])
        except (ValueError, UnicodeDecodeError, RecursionError):  # too deeply nested: malformed for us
            info = None
        if not isinstance(info, dict) or not isinstance(info.get("sid"), str):
            if hs_start is not None:
                self._handshake_failed(tcp, hs_start, ts, transport, sess.version, "error=bad-open")
            return EIO_BAD_OPEN
        sid: str = info["sid"]
        if sess.version is None:
            # PROTOCOLS.md: without EIO=, maxPayload (added in v4) in the open packet means v4.
            sess.set_version(4 if "maxPayload" in info else 3)
        if sess.sid is None:
            self._name(sess, sid)
        sess.sio.open_ts = ts
        if hs_start is not None:
            self._handshake_open(sess, tcp, hs_start, ts, transport, info)
        return ""

    def _packet(
        self, sess: _Session, tcp: int, d: int, ts: int, transport: str, pkt: _Pkt,
        ws: EngineIOWebSocket | None, hs_start: int | None,
    ) -> bool:
        """One Engine.IO packet, one row. True when it was an open packet (handshake done)."""
        t, buf, off, binary, size, anomaly = pkt
        res: SioResult | None = None
        opened = False
        if t == MESSAGE:
            if binary:
                res = sess.sio.binary(d, buf, off)
            else:
                res = sess.sio.text(d, ts, buf, off, tcp, transport)
            if res is not None:
                if res.anomaly:
                    anomaly = join_tags(anomaly, res.anomaly)
                if self.app_protocols.get(tcp) != "socketio":
                    self.app_protocols[tcp] = "socketio"
            elif tcp not in self.app_protocols:
                self.app_protocols[tcp] = "engineio"
        else:
            if tcp not in self.app_protocols:
                self.app_protocols[tcp] = "engineio"
            if t == PING or t == PONG:
                # v3 "2 ping": sent by the client; v4 "Heartbeat": the server pings. The upgrade
                # probe is a client ping in both (v4 "Upgrade").
                if not binary and buf[off:] == b"probe":
                    client_pings = True
                    if t == PONG and ws is not None and d == S2C:
                        ws.probed = True
                elif sess.version is None:
                    client_pings = d == (C2S if t == PING else S2C)  # unknown: no verdict
                else:
                    client_pings = sess.version == 3
                if t == PING and d != (C2S if client_pings else S2C):
                    anomaly = join_tags(anomaly, PING_WRONG_DIRECTION)
                elif t == PONG and d != (S2C if client_pings else C2S):
                    anomaly = join_tags(anomaly, PONG_WRONG_DIRECTION)
            elif t == OPEN:
                opened = True
                why = self._open(sess, tcp, d, ts, transport, buf, off, hs_start)
                anomaly = join_tags(anomaly, why)
            elif t == UPGRADE:
                if d == S2C:
                    anomaly = join_tags(anomaly, UPGRADE_WRONG_DIRECTION)
                elif ws is None or not ws.probed:
                    anomaly = join_tags(anomaly, UPGRADE_WITHOUT_PROBE)
                if ws is not None and d == C2S:
                    sess.transport = "websocket"
                    sess.ws = ws
        if res is None:
            values: tuple[object, ...] = (
                tcp, ts, DIRECTION_NAMES[d], transport, sess.version,
                EIO_TYPE_NAMES[t] if t >= 0 else "", "", None, None, None, None, size, None,
                anomaly, sess.sid, None,
            )
        else:
            values = (
                tcp, ts, DIRECTION_NAMES[d], transport, sess.version, "message", res.sio_type,
                res.namespace, res.event, res.ack_id, res.attachments, size, res.ack_latency_ms,
                anomaly, sess.sid, res.attachment_index,
            )
        self._deliver(sess, d, SioPacket._make(values), res)
        if t == CLOSE:
            # v4 "Protocol": close ends the session (both transports).
            self._end_session(sess)
        return opened

    # -- HTTP long-polling ---------------------------------------------------------------------

    @staticmethod
    def _body_packets(
        sess: _Session, body: bytes, headers: dict[str, str], q: dict[str, str], request: bool
    ) -> list[_Pkt]:
        """The packets of a polling body: content coding, JSONP, then the payload framing."""
        raw_size = len(body)
        body, problem = content_decoded(body, headers.get("content-encoding", ""))
        if request:
            if "j" in q or body.startswith(b"d="):
                body = _jsonp_request(body)
        elif "j" in q:
            body = _jsonp_response(body) or body
        packets, seen = decode_payload(body, sess.version, headers.get("content-type", ""))
        if sess.version is None and seen is not None:
            sess.set_version(seen)
        if problem:
            if packets:
                t, buf, off, binary, size, anomaly = packets[-1]
                packets[-1] = (t, buf, off, binary, size, join_tags(anomaly, problem))
            else:
                packets = [(-1, b"", 0, False, raw_size, problem)]
        return packets

    def polling_request(
        self, session_id: int, ts: int, method: str, target: str, headers: dict[str, str],
        body: bytes | None,
    ) -> None:
        """A request to an Engine.IO target (v4 "HTTP long-polling"); POST bodies carry c2s packets.

        Call it as soon as the request is complete (before its response): a POST's EVENT must be
        seen before the ACK that a pending GET may return first. For a GET it only notes a
        handshake request (no ``sid``), so that one never answered fails at :meth:`finish`.
        """
        q = request_query(target)
        version = _version(q)
        sid = q.get("sid")
        if method == "GET":
            if sid is None:
                self._pending_open[(session_id, ts)] = (version, _transport(q))
            return
        if method != "POST" or not body or sid is None:
            return
        sess = self._session(sid, version, target, session_id)
        for pkt in self._body_packets(sess, body, headers, q, True):
            self._packet(sess, session_id, C2S, ts, "polling", pkt, None, None)

    def polling_response(
        self, session_id: int, ts_request: int, ts: int, method: str, target: str, status: int,
        headers: dict[str, str], body: bytes | None,
    ) -> None:
        """The response to an Engine.IO request; GET bodies carry s2c packets.

        The first GET without ``sid`` gets the open packet (v4 "Handshake"); an error status there
        is a failed handshake. A 101 is left to :meth:`websocket_opened`.
        """
        if status == 101 or method != "GET":
            return
        q = request_query(target)
        sid = q.get("sid")
        version = _version(q)
        if sid is None:
            pending = self._pending_open.pop((session_id, ts_request), None)
            transport = pending[1] if pending else _transport(q)
            if not 200 <= status < 300:
                why = f"status={status}"
                message = _error_message(body)
                if message:
                    why += f" error={message}"
                self._handshake_failed(session_id, ts_request, ts, transport, version, why)
                return
            sess = self._new_session(None, version, target, session_id)
            hs_start: int | None = ts_request
            for pkt in self._body_packets(sess, body or b"", headers, q, False):
                if self._packet(sess, session_id, S2C, ts, "polling", pkt, None, hs_start):
                    hs_start = None
            if hs_start is not None:
                self._handshake_failed(
                    session_id, ts_request, ts, transport, sess.version, "error=no-open-packet"
                )
            if sess.sid is None:
                self._end_session(sess)  # nothing can name it again: nothing to wait for
            return
        if not 200 <= status < 300 or not body:
            return
        sess = self._session(sid, version, target, session_id)
        for pkt in self._body_packets(sess, body, headers, q, False):
            self._packet(sess, session_id, S2C, ts, "polling", pkt, None, None)

    # -- WebSocket -----------------------------------------------------------------------------

    def websocket_opened(
        self, session_id: int, ts_request: int, ts_response: int, target: str
    ) -> EngineIOWebSocket:
        """A GET with ``transport=websocket`` got its 101 (v4 "WebSocket").

        With ``sid=`` it is an upgrade of that session (v4 "Upgrade"); without, the session starts
        here and its handshake ends with the open packet.
        """
        self._pending_open.pop((session_id, ts_request), None)
        q = request_query(target)
        version = _version(q)
        sid = q.get("sid")
        if sid is not None:
            return EngineIOWebSocket(self, self._session(sid, version, target, session_id), session_id, None)
        sess = self._new_session(None, version, target, session_id)
        sess.transport = "websocket"
        ws = EngineIOWebSocket(self, sess, session_id, ts_request)
        sess.ws = ws
        self._ws_waiting[id(ws)] = ws
        return ws

    def finish(self, ts: int) -> None:
        """End of the analysis: unanswered handshakes fail, held rows go out, acks are counted."""
        for (tcp, ts_request), (version, transport) in self._pending_open.items():
            self._handshake_failed(tcp, ts_request, None, transport, version, "error=no-response")
        self._pending_open.clear()
        for ws in list(self._ws_waiting.values()):
            ws._give_up()
        for sess in list(self._sessions.values()) + list(self._unnamed.values()):
            if not sess.closed:
                self._end_session(sess)


def _error_message(body: bytes | None) -> str:
    """The ``message`` of an Engine.IO error response ``{"code":..,"message":..}`` (rare path)."""
    if not body:
        return ""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # too deeply nested: malformed for us
        return ""
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return str(value["message"])[:200]
    return ""


class EngineIOWebSocket:
    """The WebSocket transport of one Engine.IO session, on one TCP connection.

    v4 "WebSocket": one Engine.IO packet per message. Binary messages: v4 the raw data of a
    message packet; v3 (v3 "Packet") the first byte is the packet type.
    """

    __slots__ = ("_eio", "_sess", "_tcp", "_hs_start", "probed", "_level")

    def __init__(
        self, eio: EngineIO, sess: _Session, session_id: int, hs_start: int | None
    ) -> None:
        self._eio = eio
        self._sess = sess
        self._tcp = session_id
        self._hs_start = hs_start  # ts of the GET when this WebSocket is the session's handshake
        self.probed = False  # s2c "3probe" seen (v4 "Upgrade")
        self._level = False  # this connection's app level set to "socketio" by the fast path

    def ws_message(self, direction: int, ts: int, opcode: int, payload: bytes | None) -> None:
        """One complete WebSocket data message: opcode 1 text (UTF-8 bytes) or 2 binary.

        ``payload`` None: the WebSocket layer could not decode the message (a row says so).

        The commonest packets, an EVENT or ACK on "/" (``42["name",...``, ``421["name",...``,
        ``431[...``) in a Socket.IO session with nothing held or expected, take a fast path
        first (inline: a call per message is measurable): the row the general path
        (engineio._packet + socketio.text) makes, without its intermediate tuples. Anything else
        falls through to the general path.
        """
        sess = self._sess
        sio = sess.sio
        if fastpaths.SIO_EVENT_HEADER and opcode == 1 and payload is not None and payload[:1] == b"4" \
                and not sess.closed and sio.mode == MODE_SIO and not sio.expect[direction] \
                and sess.held[direction] is None:
            t = payload[1:2]
            i = 2
            ack_id = None
            if b"0" <= payload[2:3] <= b"9":
                i = DIGITS.match(payload, 2).end()  # type: ignore[union-attr]  # always matches
                ack_id = int(payload[2:i]) if i - 2 <= MAX_ACK_ID_DIGITS else -1
            sio_type = ""
            if payload[i : i + 1] == b"[" and ack_id != -1:
                if t == b"2":
                    q = payload.find(b'"', i + 2)
                    # (escapes: JSON decoding on the general path)
                    if payload[i + 1 : i + 2] == b'"' and q >= 0 and payload.find(b"\\", i + 2, q) < 0:
                        name: str | None = payload[i + 2 : q].decode("utf-8", "replace")
                        sio_type = "EVENT"
                        latency = None
                        anomaly = RESERVED_EVENT_NAME if sio.protocol != 4 and name in RESERVED_EVENTS else ""
                        if ack_id is not None:
                            anomaly = join_tags(anomaly, sio.event_sent(direction, "/", ack_id, ts))
                elif t == b"3":
                    name = None
                    sio_type = "ACK"
                    latency = sio.ack_received(direction, "/", ack_id, ts)
                    anomaly = ACK_WITHOUT_EVENT if latency is None else ""
            if sio_type:
                tcp = self._tcp
                eio = self._eio
                if not self._level:
                    eio.app_protocols[tcp] = "socketio"
                    self._level = True
                eio.outbox.sio_packets.append(_new_row(SioPacket, (
                    tcp, ts, DIRECTION_NAMES[direction], "websocket", sess.version, "message", sio_type,
                    "/", name, ack_id, None, len(payload) - 1, latency, anomaly, sess.sid, None,
                )))
                return
        pkt: _Pkt
        if payload is None:
            pkt = (-1, b"", 0, opcode == 2, 0, WS_UNDECODABLE)
            if opcode == 2 and sio.expect[direction]:
                # Most likely the attachment that was expected: count it as one.
                pkt = (MESSAGE, b"", 0, True, 0, WS_UNDECODABLE)
        elif opcode == 2:
            if sess.version == 3:
                pkt = _v3_binary_packet(payload)
            else:
                pkt = (MESSAGE, payload, 0, True, len(payload), "")
        else:
            pkt = _text_packet(payload, sess.version)
        hs_start = self._hs_start
        if self._eio._packet(sess, self._tcp, direction, ts, "websocket", pkt, self, hs_start):
            if hs_start is not None and direction == S2C:
                self._hs_start = None
                self._eio._ws_waiting.pop(id(self), None)

    def _give_up(self) -> None:
        """No open packet came: the WebSocket-only handshake failed."""
        if self._hs_start is not None:
            self._eio._handshake_failed(
                self._tcp, self._hs_start, None, "websocket", self._sess.version,
                "error=no-response",
            )
            self._hs_start = None
        self._eio._ws_waiting.pop(id(self), None)

    def ws_closed(self, ts: int) -> None:
        """Optional: the WebSocket (or its TCP connection) ended at ``ts``.

        When this WebSocket carried the session (WebSocket-only, or after the upgrade) the session
        ends with it; a probe WebSocket whose upgrade never completed leaves the session alone.
        Without this call the same happens at :meth:`EngineIO.finish`.
        """
        self._give_up()
        sess = self._sess
        if sess.ws is self and not sess.closed:
            self._eio._end_session(sess)
