"""Socket.IO packets carried in Engine.IO ``message`` packets.

References (read them before changing anything here):

* Socket.IO protocol v5 (socket.io 3+, on Engine.IO 4): socketio/socket.io-protocol, branch
  ``main``, sections "Exchange protocol" and "Packet encoding".
* Socket.IO protocol v4 (socket.io 1 and 2, on Engine.IO 3): socketio/socket.io-protocol, branch
  ``v4``, sections "Packet types", "Packet encoding" and "Exchange protocol".
* The reference decoder, socket.io-parser (``Decoder.decodeString``): where the documents are
  silent, its behaviour is what real peers accept.

Encoding (both versions)::

    <type>[<# of binary attachments>-][<namespace>,][<ack id>][JSON payload]

followed, for BINARY_EVENT / BINARY_ACK, by the attachments as separate Engine.IO binary messages.

Hot path: :func:`parse_header` reads only the header and the event name (the first JSON string of
an EVENT's array); it never parses a whole payload. CONNECT / CONNECT_ERROR payloads are rare and
are parsed with :func:`json.loads`.

:class:`SocketIOState` is the per-Engine.IO-session state (namespaces being connected, acks
waiting for their answer, attachments still expected); :mod:`dissect.protocols.engineio` feeds it one message
at a time and turns each :class:`SioResult` into a ``sio_packets`` row.
"""

from __future__ import annotations

import base64
import json
import re
from typing import NamedTuple
from zlib import crc32

import msgpack

from dissect.protocols.socketio_sockets import SessionSockets
from dissect.records import C2S, CAPTURE_ENDED, S2C, Handshake, Outbox, capture_ended, ms

# Packet types, Socket.IO protocol v5 "Exchange protocol" table (v4 names type 4 ERROR; it is the
# same packet and the report calls it CONNECT_ERROR for both versions).
CONNECT = 0
DISCONNECT = 1
EVENT = 2
ACK = 3
CONNECT_ERROR = 4
BINARY_EVENT = 5
BINARY_ACK = 6
SIO_TYPE_NAMES = (
    "CONNECT",
    "DISCONNECT",
    "EVENT",
    "ACK",
    "CONNECT_ERROR",
    "BINARY_EVENT",
    "BINARY_ACK",
)

# --- anomaly tags (kebab-case; several on one row are joined with ';') ---
SIO_BAD_TYPE = "sio-bad-type"  # first character is not a packet type 0-6 (or the message is empty)
SIO_BAD_PAYLOAD = "sio-bad-payload"  # payload of the wrong JSON kind for the type (or unparseable)
SIO_BAD_ACK_ID = "sio-bad-ack-id"  # ack id longer than a JavaScript safe integer
RESERVED_EVENT_NAME = "reserved-event-name"  # v5 forbids "connect", "disconnect", ... as names
ATTACHMENTS_INVALID = "attachments-invalid"  # BINARY_* without `N-`, N < 1 or N > MAX_ATTACHMENTS
ATTACHMENTS_MISSING = "attachments-missing"  # fewer attachments arrived than announced
ATTACHMENT_UNEXPECTED = "attachment-unexpected"  # binary message nobody announced
ACK_WITHOUT_EVENT = "ack-without-event"  # ACK whose id matches no EVENT in the other direction
ACK_ID_REUSED = "ack-id-reused"  # EVENT reusing an ack id still waiting for its ACK
CONNECT_UNSOLICITED = "connect-unsolicited"  # server CONNECT / CONNECT_ERROR nobody asked for
SIO_WRONG_DIRECTION = "sio-wrong-direction"  # CONNECT_ERROR sent by the client
CUSTOM_PARSER = "custom-parser"  # binary messages of a custom parser (socket.io-msgpack-parser)
#: Every Socket.IO tag of the ``sio_packets`` table's ``anomaly`` column (docs/REPORTS.md, "Anomaly
#: and warning kinds").
ANOMALIES: tuple[str, ...] = (
    SIO_BAD_TYPE, SIO_BAD_PAYLOAD, SIO_BAD_ACK_ID, RESERVED_EVENT_NAME, ATTACHMENTS_INVALID,
    ATTACHMENTS_MISSING, ATTACHMENT_UNEXPECTED, ACK_WITHOUT_EVENT, ACK_ID_REUSED, CONNECT_UNSOLICITED,
    SIO_WRONG_DIRECTION, CUSTOM_PARSER,
)
#: The names Socket.IO counts in summary.json's ``decode``.
DECODE_COUNTERS: tuple[str, ...] = ("sio-acks-dropped",)

# Bounds on per-session state (memory stays bounded whatever the capture holds).
MAX_ATTACHMENTS = 1000  # socket.io-parser rejects more than 10 by default; allow headroom
MAX_PENDING_ACKS = 1_000  # per Engine.IO session; the oldest is dropped and counted
MAX_PENDING_CONNECTS = 256  # namespaces being connected per Engine.IO session
MAX_ACK_ID_DIGITS = 16  # 2**53 - 1 has 16 digits: beyond that JavaScript cannot hold the id
MAX_ERROR_CHARS = 200  # CONNECT_ERROR message kept in the handshake detail

# socket.io-parser 4.x (protocol v5) rejects these event names (RESERVED_EVENTS).
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

# Session modes: until the first message says otherwise we do not know whether an Engine.IO session
# carries Socket.IO (the path is usually /socket.io/ but may be anything).
MODE_UNKNOWN = 0
MODE_SIO = 1  # default Socket.IO parser
MODE_EIO = 2  # plain Engine.IO application: messages are not Socket.IO packets
MODE_CUSTOM = 3  # Socket.IO with a custom (binary) parser: packets are not decoded
MODE_MSGPACK = 4  # socket.io-msgpack-parser: every packet one binary message holding a msgpack map

_NO_ACK_ID = (CONNECT, DISCONNECT, CONNECT_ERROR)
# The run of ASCII digits at a position (possibly empty: ``DIGITS.match(data, i)`` never fails);
# its ``end()`` is where a number such as an ack id or an attachment count stops.
DIGITS = re.compile(rb"[0-9]*")
_JSON_NUMBER = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DECODER = json.JSONDecoder()
_WS = b" \t\r\n"
_SLASH = 0x2F
_COMMA = 0x2C
_DASH = 0x2D
_QUOTE = 0x22
_BACKSLASH = 0x5C
_LBRACKET = 0x5B
_LBRACE = 0x7B


class SioHeader(NamedTuple):
    """The header of one Socket.IO packet, as :func:`parse_header` read it."""

    type: int  # 0-6, or -1 when the first character is not a packet type
    attachments: int | None  # BINARY_EVENT / BINARY_ACK: the announced count (None if invalid)
    namespace: str  # "/" when absent; a v4 query string ("/admin?token=1") is cut off
    ack_id: int | None
    payload_start: int  # offset of the JSON payload in the buffer (== len when absent)
    event: str | None  # EVENT / BINARY_EVENT name (a number name is given as its JSON text)
    anomaly: str  # ';'-joined tags, '' when the header is valid


def join_tags(a: str, b: str) -> str:
    """Join two ';'-separated anomaly tag lists (either may be ``''``): the one way the Engine.IO
    and Socket.IO dissectors combine the tags of one row."""
    if not a:
        return b
    if not b:
        return a
    return a + ";" + b


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _clean(s: str) -> str:
    """A JSON string may hold lone surrogates (``"\\ud800"``); they cannot be written as UTF-8."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "replace").decode("utf-8")
    return s


def _event_name(data: bytes, i: int, n: int) -> tuple[str | None, bool]:
    """The first element of the JSON array whose ``[`` is at ``i - 1``: (name, valid).

    Scans to the closing quote; only a name holding a backslash is decoded by the JSON decoder,
    and then only that string literal (socket.io-parser accepts a string or a number here).
    """
    while i < n and data[i] in _WS:
        i += 1
    if i >= n:
        return None, False
    c = data[i]
    if c == _QUOTE:
        q = data.find(b'"', i + 1)
        if q < 0:
            return None, False
        if data.find(b"\\", i + 1, q) < 0:
            return data[i + 1 : q].decode("utf-8", "replace"), True
        # An escaped quote does not end the string: the quote ends it when the run of backslashes
        # before it has even length.
        while True:
            k = q - 1
            while data[k] == _BACKSLASH:
                k -= 1
            if (q - 1 - k) % 2 == 0:
                break
            q = data.find(b'"', q + 1)
            if q < 0:
                return None, False
        try:
            name, _ = _DECODER.raw_decode(_text(data[i : q + 1]))
        except (ValueError, RecursionError):
            return None, False
        return _clean(name), True
    if c == _DASH or 0x30 <= c <= 0x39:
        m = _JSON_NUMBER.match(data, i)
        if m is not None:
            return m.group().decode("ascii"), True
    return None, False


def parse_header(data: bytes, start: int = 0, v5: bool = True) -> SioHeader:
    """Read the header of the Socket.IO packet ``data[start:]`` (socket.io-protocol "Format").

    Mirrors socket.io-parser's ``decodeString``: attachments only for types 5 and 6; a namespace
    only when the next character is ``/`` (up to ``,`` or the end); an ack id of digits; then the
    JSON payload, of which only the first character (and an EVENT's name) is looked at.
    ``v5`` enables the checks socket.io-parser 4 (protocol v5) added, such as reserved names.
    """
    n = len(data)
    if start >= n:
        return SioHeader(-1, None, "/", None, n, None, SIO_BAD_TYPE)
    t = data[start] - 0x30
    if t < 0 or t > 6:
        return SioHeader(-1, None, "/", None, n, None, SIO_BAD_TYPE)
    i = start + 1
    anomaly = ""
    attachments: int | None = None
    if t == BINARY_EVENT or t == BINARY_ACK:
        j = DIGITS.match(data, i).end()  # type: ignore[union-attr]  # [0-9]* always matches
        if j < n and data[j] == _DASH and j > i:
            if j - i <= 6:
                count = int(data[i:j])
                if 1 <= count <= MAX_ATTACHMENTS:
                    attachments = count
            i = j + 1
        if attachments is None:
            anomaly = ATTACHMENTS_INVALID
    namespace = "/"
    if i < n and data[i] == _SLASH:
        comma = data.find(b",", i)
        end = n if comma < 0 else comma
        raw = data[i:end]
        q = raw.find(b"?")  # protocol v4: "/admin?token=1234" carries a query after the name
        if q >= 0:
            raw = raw[:q]
        namespace = _text(raw)
        i = n if comma < 0 else comma + 1
    ack_id: int | None = None
    if i < n and 0x30 <= data[i] <= 0x39:
        j = DIGITS.match(data, i).end()  # type: ignore[union-attr]
        if j - i <= MAX_ACK_ID_DIGITS:
            ack_id = int(data[i:j])
        else:
            anomaly = join_tags(anomaly, SIO_BAD_ACK_ID)
        i = j
    event: str | None = None
    if i < n:
        c = data[i]
        if c in _WS:  # no encoder writes whitespace here, but JSON.parse accepts it
            while i < n and data[i] in _WS:
                i += 1
            c = data[i] if i < n else 0
    else:
        c = 0
    ok = True
    if t == EVENT or t == BINARY_EVENT:
        if c == _LBRACKET:
            event, ok = _event_name(data, i + 1, n)
            if ok and v5 and event in RESERVED_EVENTS:
                anomaly = join_tags(anomaly, RESERVED_EVENT_NAME)
        else:
            ok = False
    elif t == ACK or t == BINARY_ACK:
        ok = c == _LBRACKET
    elif t == CONNECT:
        ok = c == 0 or c == _LBRACE
    elif t == DISCONNECT:
        ok = c == 0
    else:  # CONNECT_ERROR: v5 an object {"message": ...}, v4 a JSON string (or an object)
        ok = c == _LBRACE or c == _QUOTE
    if not ok:
        anomaly = join_tags(anomaly, SIO_BAD_PAYLOAD)
    return SioHeader(t, attachments, namespace, ack_id, i, event, anomaly)


def looks_like_msgpack_map(data: bytes, start: int = 0) -> bool:
    """True when ``data[start:]`` starts like a msgpack map with a string key.

    socket.io-msgpack-parser encodes every packet as one map (``{type, data, nsp, id}``) in one
    binary message; a fixmap (0x80-0x8f), map16 (0xde) or map32 (0xdf) whose first key is a
    fixstr (0xa0-0xbf) or str8 (0xd9) is what it looks like.
    """
    n = len(data)
    if start >= n:
        return False
    b = data[start]
    if 0x81 <= b <= 0x8F:
        k = start + 1
    elif b == 0xDE:
        k = start + 3
    elif b == 0xDF:
        k = start + 5
    else:
        return False
    if k >= n:
        return False
    key = data[k]
    return 0xA0 <= key <= 0xBF or key == 0xD9


class MsgpackPacket(NamedTuple):
    """A socket.io-msgpack-parser packet, decoded (:func:`msgpack_packet`)."""

    type: int
    namespace: str
    ack_id: int | None
    event: str | None
    json: str  # the packet's data as the default parser would have sent it (binary as base64)
    digest: int | None  # EVENT: CRC-32 of the msgpack bytes of its data (name and arguments)
    anomaly: str


class _Undefined:
    """JavaScript's ``undefined`` as notepack.io (socket.io-msgpack-parser's encoder) writes it:
    ext type 0 holding one zero byte."""


_UNDEFINED = _Undefined()


def _ext(code: int, data: bytes) -> object:
    if code == 0 and data == b"\x00":
        return _UNDEFINED
    return msgpack.ExtType(code, data)


def _defined(value: object) -> object:
    """``value`` as JSON.stringify sees it: ``undefined`` properties dropped, ``null`` in arrays."""
    if isinstance(value, dict):
        return {k: _defined(v) for k, v in value.items() if v is not _UNDEFINED}
    if isinstance(value, list):
        return [_defined(v) for v in value]
    return None if value is _UNDEFINED else value


def _jsonable(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"_binary_base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, msgpack.ExtType):
        return {"_ext": value.code, "_binary_base64": base64.b64encode(value.data).decode("ascii")}
    raise TypeError(type(value).__name__)


def msgpack_packet(data: bytes, start: int = 0) -> MsgpackPacket | None:
    """``data[start:]`` as a packet of socket.io-msgpack-parser (its ``Encoder``: the packet object
    ``{type, data, nsp, id}`` as one msgpack map; binary data inline, so no BINARY_* types and no
    attachments); None when it is not one (another custom parser, or damaged): a packet needs an
    integer ``type`` of 0-4 and a string ``nsp``, as the parser's ``checkPacket`` does."""
    try:
        obj = _defined(msgpack.unpackb(
            data[start:], raw=False, strict_map_key=False, ext_hook=_ext, max_bin_len=len(data),
            max_str_len=len(data), max_array_len=len(data), max_map_len=len(data), max_ext_len=len(data)))
    except (ValueError, msgpack.UnpackException, msgpack.ExtraData, TypeError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    t, nsp, ack_id, payload = obj.get("type"), obj.get("nsp"), obj.get("id"), obj.get("data")
    if type(t) is not int or not CONNECT <= t <= CONNECT_ERROR or not isinstance(nsp, str):
        return None
    anomaly = ""
    if ack_id is not None and (type(ack_id) is not int or ack_id < 0 or ack_id >= 1 << 53 or t in _NO_ACK_ID):
        ack_id, anomaly = None, SIO_BAD_ACK_ID
    event: str | None = None
    ok = True
    if t == EVENT:
        name = payload[0] if isinstance(payload, list) and payload else None
        ok = isinstance(name, (str, int, float))
        if ok:
            event = _clean(name) if isinstance(name, str) else json.dumps(name)
            if event in RESERVED_EVENTS:
                anomaly = join_tags(anomaly, RESERVED_EVENT_NAME)
    elif t == ACK:
        ok = isinstance(payload, list)
    elif t == CONNECT:
        ok = payload is None or isinstance(payload, dict)
    elif t == DISCONNECT:
        ok = payload is None
    else:
        ok = isinstance(payload, (dict, str))
    if not ok:
        anomaly = join_tags(anomaly, SIO_BAD_PAYLOAD)
    try:
        text = "" if payload is None else json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                                                   default=_jsonable)
    except (TypeError, ValueError, RecursionError):
        text = ""
    digest = crc32(msgpack.packb(payload)) if t == EVENT and ok else None
    return MsgpackPacket(t, _clean(nsp), ack_id, event, _clean(text), digest, anomaly)


def connect_error_message(payload: bytes) -> str:
    """The reason of a CONNECT_ERROR: v5 ``{"message": ...}``, v4 a JSON string (rare path)."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nesting past the stack: not JSON we read
        return _text(payload[:MAX_ERROR_CHARS])
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        text = value["message"]
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return _clean(text[:MAX_ERROR_CHARS])


class SioResult(NamedTuple):
    """What one Engine.IO message contributes to its ``sio_packets`` row."""

    sio_type: str
    namespace: str | None
    event: str | None
    ack_id: int | None
    attachments: int | None
    ack_latency_ms: float | None
    anomaly: str
    attachment_index: int | None  # set on an attachment's row: its "num" in the placeholders
    group: int  # GROUP_* below: how the row relates to a BINARY_* packet and its attachments
    broken: bool  # attachments were still expected in this direction: that group is cut short
    acked_event: str | None = None  # on an ACK: the event name of the EVENT it answers
    data: str | None = None  # --payloads: the packet's JSON as sent
    digest: int | None = None  # EVENT / BINARY_EVENT: CRC-32 of the payload (event name and arguments)


GROUP_NONE = 0
GROUP_START = 1  # a BINARY_EVENT / BINARY_ACK announcing attachments
GROUP_MORE = 2  # an attachment, more to come
GROUP_END = 3  # the last attachment

_PendingConnect = tuple[int, int, str]  # ts, TCP session id, transport


class SocketIOState:
    """Socket.IO state of one Engine.IO session (both directions, every transport it used).

    ``protocol`` is 5 on Engine.IO 4 and 4 on Engine.IO 3 (socket.io-protocol "History"). Rows are
    not built here; handshakes are: one ``socketio`` row per namespace connection, appended to the
    outbox when the server answers (or when :meth:`close` gives up on it).
    """

    __slots__ = (
        "outbox",
        "payloads",
        "counters",
        "protocol",
        "mode",
        "open_ts",
        "pending_acks",
        "pending_connects",
        "expect",
        "att_index",
        "att_nsp",
        "sockets",
    )

    def __init__(self, outbox: Outbox, mode: int = MODE_UNKNOWN, payloads: bool = False) -> None:
        self.outbox = outbox
        self.payloads = payloads  # --payloads: results carry the packet's JSON
        self.counters: dict[str, int] = {}  # this session's: sio-acks-dropped, sio-acks-unanswered
        self.protocol: int | None = None
        self.mode = mode
        self.open_ts: int | None = None  # Engine.IO open packet: start of v4's implicit "/" connect
        self.pending_acks: dict[tuple[int, str, int], tuple[int, str | None]] = {}  # -> (ts, event)
        self.pending_connects: dict[str, _PendingConnect] = {}
        self.expect = [0, 0]  # attachments still expected, per direction
        self.att_index = [0, 0]
        self.att_nsp = ["/", "/"]
        self.sockets = SessionSockets()  # each namespace's socket: the sio_sockets rows

    # -- messages -------------------------------------------------------------------------------

    def text(
        self, direction: int, ts: int, data: bytes, start: int, session_id: int, transport: str
    ) -> SioResult | None:
        """A text Engine.IO message ``data[start:]``; None when the session is not Socket.IO."""
        mode = self.mode
        if mode == MODE_EIO:
            return None
        broken = False
        if self.expect[direction]:
            # socket.io-parser: "got plaintext data when reconstructing a packet".
            broken = True
            self.expect[direction] = 0
        v5 = self.protocol != 4
        h = parse_header(data, start, v5)
        if mode == MODE_UNKNOWN:
            # Decide on the first text message: a plain Engine.IO message such as "4hello" is not
            # a valid Socket.IO packet; "4123" would be (DISCONNECT, ack id 23): no ack id there.
            if h.anomaly or (h.ack_id is not None and h.type in _NO_ACK_ID):
                self.mode = MODE_EIO
                return None
            self.mode = MODE_SIO
        t = h.type
        if t < 0:
            return SioResult("", None, None, None, None, None, h.anomaly, None, GROUP_NONE, broken)
        payload = data[h.payload_start :]
        return self.packet(direction, ts, session_id, transport, t, h.namespace, h.ack_id, h.event, h.attachments,
                           payload, h.anomaly, broken,
                           payload.decode("utf-8", "replace") if self.payloads and payload else None)

    def packet(
        self, direction: int, ts: int, session_id: int, transport: str, t: int, nsp: str, ack_id: int | None,
        event: str | None, attachments: int | None, payload: bytes, anomaly: str, broken: bool,
        text: str | None, digest: int | None = None,
    ) -> SioResult:
        """One decoded Socket.IO packet of type ``t`` (whichever parser decoded it): acks,
        handshakes and sockets followed; its row's Socket.IO part. ``payload`` is the packet's
        JSON payload (``["event", ...args]`` for an EVENT) as the sockets read it; ``digest`` its
        CRC-32 when not that of ``payload``."""
        latency: float | None = None
        acked: str | None = None
        if t != EVENT and t != BINARY_EVENT:
            digest = None
        group = GROUP_NONE
        if t == EVENT or t == BINARY_EVENT:
            if ack_id is not None:
                anomaly = join_tags(anomaly, self.event_sent(direction, nsp, ack_id, ts, event))
            if digest is None:
                digest = crc32(payload)
            self.sockets.event(direction, nsp, payload, ts)
        elif t == ACK or t == BINARY_ACK:
            answered = self.ack_received(direction, nsp, ack_id, ts)
            if answered is None:
                anomaly = join_tags(anomaly, ACK_WITHOUT_EVENT)
            else:
                latency, acked = answered
        elif t == CONNECT:
            anomaly = join_tags(anomaly, self._connect(direction, ts, nsp, session_id, transport))
            if direction == C2S:
                self.sockets.connect_request(nsp, ts, session_id, payload)
            else:
                self.sockets.connect_answer(nsp, ts, session_id, payload, True)
        elif t == CONNECT_ERROR:
            if direction == C2S:
                anomaly = join_tags(anomaly, SIO_WRONG_DIRECTION)
            else:
                reason = connect_error_message(payload)
                anomaly = join_tags(
                    anomaly, self._answer(ts, nsp, session_id, transport, reason)
                )
                self.sockets.connect_answer(nsp, ts, session_id, None, False)
        elif t == DISCONNECT:
            self.sockets.disconnect(direction, nsp, ts)
        if attachments is not None:
            self.expect[direction] = attachments
            self.att_index[direction] = 0
            self.att_nsp[direction] = nsp
            group = GROUP_START
        return SioResult(
            SIO_TYPE_NAMES[t], nsp, event, ack_id, attachments, latency, anomaly, None, group, broken, acked,
            text, digest,
        )

    def event_sent(self, direction: int, nsp: str, ack_id: int, ts: int, event: str | None) -> str:
        """An EVENT asking for an ack (socket.io-protocol "Acknowledgement"): remember when it was
        sent and its name; ``ack-id-reused`` when the same id is still waiting for its ACK."""
        key = (direction, nsp, ack_id)
        acks = self.pending_acks
        anomaly = ""
        if key in acks:
            anomaly = ACK_ID_REUSED
            del acks[key]
        elif len(acks) >= MAX_PENDING_ACKS:
            del acks[next(iter(acks))]
            self.counters["sio-acks-dropped"] = self.counters.get("sio-acks-dropped", 0) + 1
        acks[key] = (ts, event)
        return anomaly

    def ack_received(self, direction: int, nsp: str, ack_id: int | None,
                     ts: int) -> tuple[float, str | None] | None:
        """An ACK: the latency in ms since the EVENT it answers and that EVENT's name; None when
        no EVENT waits for it."""
        if ack_id is None:
            return None
        sent = self.pending_acks.pop((1 - direction, nsp, ack_id), None)
        return None if sent is None else ((ts - sent[0]) / 1e6, sent[1])

    def binary(self, direction: int, data: bytes, start: int = 0, ts: int = 0, session_id: int = 0,
               transport: str = "websocket") -> SioResult | None:
        """A binary Engine.IO message ``data[start:]``: an attachment, or a custom parser's packet.

        None when the session is not (or not yet known to be) Socket.IO.
        """
        mode = self.mode
        if mode == MODE_EIO:
            return None
        left = self.expect[direction]
        if left:
            index = self.att_index[direction]
            self.att_index[direction] = index + 1
            self.expect[direction] = left - 1
            return SioResult(
                "",
                self.att_nsp[direction],
                None,
                None,
                None,
                None,
                "",
                index,
                GROUP_END if left == 1 else GROUP_MORE,
                False,
            )
        if mode == MODE_CUSTOM or mode == MODE_MSGPACK or looks_like_msgpack_map(data, start):
            decoded = msgpack_packet(data, start) if mode != MODE_CUSTOM else None
            if decoded is None and mode == MODE_MSGPACK:  # damaged, in a msgpack-parser session
                return SioResult("", None, None, None, None, None, CUSTOM_PARSER, None, GROUP_NONE, False)
            if decoded is None:
                # not socket.io-msgpack-parser's: another custom parser, reported, never guessed at
                self.mode = MODE_CUSTOM
                return SioResult(
                    "", None, None, None, None, None, CUSTOM_PARSER, None, GROUP_NONE, False
                )
            self.mode = MODE_MSGPACK
            return self.msgpack(direction, ts, session_id, transport, decoded)
        if mode == MODE_UNKNOWN:
            # The default parser sends binary only as attachments: this is not (yet) Socket.IO.
            return None
        return SioResult(
            "", None, None, None, None, None, ATTACHMENT_UNEXPECTED, None, GROUP_NONE, False
        )

    def msgpack(self, direction: int, ts: int, session_id: int, transport: str, p: MsgpackPacket) -> SioResult:
        """A packet of socket.io-msgpack-parser, decoded: the same row as the default parser's."""
        payload = p.json.encode("utf-8")
        return self.packet(direction, ts, session_id, transport, p.type, p.namespace, p.ack_id, p.event, None,
                           payload, p.anomaly, False, p.json if self.payloads and p.json else None, p.digest)

    def abandon_attachments(self, direction: int) -> None:
        """Stop expecting attachments in ``direction`` (the caller flagged the group as cut)."""
        self.expect[direction] = 0

    # -- handshakes -----------------------------------------------------------------------------

    def _connect(self, direction: int, ts: int, nsp: str, session_id: int, transport: str) -> str:
        if direction == C2S:
            pending = self.pending_connects
            pending.pop(nsp, None)
            if len(pending) >= MAX_PENDING_CONNECTS:
                del pending[next(iter(pending))]
            pending[nsp] = (ts, session_id, transport)
            return ""
        return self._answer(ts, nsp, session_id, transport, None)

    def _answer(
        self, ts: int, nsp: str, session_id: int, transport: str, error: str | None
    ) -> str:
        """The server's CONNECT (error None) or CONNECT_ERROR for ``nsp``: one handshake row."""
        pending = self.pending_connects.pop(nsp, None)
        if pending is not None:
            ts_start = pending[0]
        elif self.protocol == 4 and nsp == "/":
            # Protocol v4 "Connection to the default namespace": the server connects "/" without
            # being asked, as soon as the Engine.IO session is open.
            ts_start = self.open_ts if self.open_ts is not None else ts
        else:
            return CONNECT_UNSOLICITED
        detail = f"namespace={nsp}" if error is None else f"namespace={nsp} error={error}"
        self.outbox.handshakes.append(
            Handshake(
                session_id, "socketio", ts_start, ts, ms(ts_start, ts), error is None, detail,
                transport,
            )
        )
        return ""

    def close(self) -> None:
        """The Engine.IO session ended (close packet, end of the WebSocket, end of the analysis).

        CONNECTs never answered become failed handshakes (ok empty, "capture ended", when the
        capture's end cut them short); events still waiting for their ACK are counted
        (``sio-acks-unanswered``).
        """
        for nsp, (ts, session_id, transport) in self.pending_connects.items():
            cut = capture_ended(ts, self.outbox.capture_end)
            self.outbox.handshakes.append(
                Handshake(
                    session_id, "socketio", ts, None, None, None if cut else False,
                    f"namespace={nsp} {CAPTURE_ENDED if cut else 'error=no-response'}", transport,
                )
            )
        self.pending_connects.clear()
        if self.pending_acks:
            c = self.counters
            c["sio-acks-unanswered"] = c.get("sio-acks-unanswered", 0) + len(self.pending_acks)
            self.pending_acks.clear()
        self.expect[C2S] = self.expect[S2C] = 0
