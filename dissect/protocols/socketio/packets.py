"""Socket.IO packet encoding (the default parser, socket.io-parser): types, anomaly tags, the header.

Encoding (both versions)::

    <type>[<# of binary attachments>-][<namespace>,][<ack id>][JSON payload]

followed, for BINARY_EVENT / BINARY_ACK, by the attachments as separate Engine.IO binary messages.

Hot path: :func:`parse_header` reads only the header and the event name (the first JSON string of
an EVENT's array); it never parses a whole payload. CONNECT / CONNECT_ERROR payloads are rare and
are parsed with :func:`json.loads` (:func:`connect_error_message`).
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

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

NO_ACK_ID_TYPES = (CONNECT, DISCONNECT, CONNECT_ERROR)
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


def as_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def clean_text(s: str) -> str:
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
            name, _ = _DECODER.raw_decode(as_text(data[i : q + 1]))
        except (ValueError, RecursionError):
            return None, False
        return clean_text(name), True
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
        namespace = as_text(raw)
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


def connect_error_message(payload: bytes) -> str:
    """The reason of a CONNECT_ERROR: v5 ``{"message": ...}``, v4 a JSON string (rare path)."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nesting past the stack: not JSON we read
        return as_text(payload[:MAX_ERROR_CHARS])
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        text = value["message"]
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return clean_text(text[:MAX_ERROR_CHARS])

