"""WebSocket dissector: RFC 6455 frames and messages, RFC 7692 permessage-deflate.

Sans-IO: :class:`WebSocketDissector` is fed the in-order stream bytes of one TCP connection after
the 101 response, per direction, with integer-nanosecond timestamps; it appends
:class:`~dissect.records.WsFrame` and :class:`~dissect.records.WsMessage` rows to a
:class:`~dissect.records.Outbox` and hands complete data messages to an optional upper layer
(:class:`WsUpper`). :func:`negotiate` reads the opening handshake (RFC 6455 section 4,
RFC 7692 section 7.1) for the ``handshakes`` row and the deflate parameters.

The dissector never raises on hostile input: whatever violates RFC 6455 / RFC 7692 becomes a
kebab-case tag in the row's ``anomaly`` column (the ``*`` tag constants below).
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import re
import struct
import zlib
from typing import NamedTuple, Protocol

from dissect.records import C2S, DIRECTION_NAMES, S2C, Outbox, WsFrame, WsMessage

__all__ = [
    "GUID",
    "DeflateParams",
    "WebSocketDissector",
    "WsUpper",
    "accept_key",
    "negotiate",
    "OPCODE_NAMES",
    "ANOMALY_TAGS",
    "ANOMALIES",
]

# RFC 6455 section 1.3 / 4.2.2: the GUID concatenated to Sec-WebSocket-Key.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Opcodes, RFC 6455 section 5.2 / 11.8.
OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
OPCODE_NAMES: tuple[str, ...] = tuple(
    {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}.get(
        op, f"reserved-{op}"
    )
    for op in range(16)
)

# Anomaly tags (stable: reports and summaries count them).  Frame-level tags also appear,
# once each, on the row of the message the frame belongs to.
UNMASKED_CLIENT_FRAME = "unmasked-client-frame"  # RFC 6455 5.1, 5.3
MASKED_SERVER_FRAME = "masked-server-frame"  # RFC 6455 5.1
CONTROL_TOO_LONG = "control-too-long"  # RFC 6455 5.5: payload <= 125
CONTROL_FRAGMENTED = "control-fragmented"  # RFC 6455 5.5: FIN must be set
RESERVED_OPCODE = "reserved-opcode"  # RFC 6455 5.2: 0x3-0x7, 0xB-0xF
RSV_WITHOUT_EXTENSION = "rsv-without-extension"  # RFC 6455 5.2: RSV bit no extension defined
RSV1_ON_CONTINUATION = "rsv1-on-continuation"  # RFC 7692 6.1: RSV1 only on first frame
RSV1_ON_CONTROL = "rsv1-on-control"  # RFC 7692 6.1: never on control frames
CONTINUATION_WITHOUT_START = "continuation-without-start"  # RFC 6455 5.4
NEW_MESSAGE_INSIDE_FRAGMENTED = "new-message-inside-fragmented"  # RFC 6455 5.4
MESSAGE_INTERRUPTED = "message-interrupted"  # message cut short by a new-message frame
LENGTH_NOT_MINIMAL = "length-not-minimal"  # RFC 6455 5.2
LENGTH_MSB_SET = "length-msb-set"  # RFC 6455 5.2
FRAME_AFTER_CLOSE = "frame-after-close"  # RFC 6455 5.5.1: nothing after a Close
INVALID_UTF8 = "invalid-utf8"  # RFC 6455 5.6, 8.1 (text message, close reason)
INVALID_CLOSE_CODE = "invalid-close-code"  # RFC 6455 7.4
CLOSE_BODY_1_BYTE = "close-body-1-byte"  # RFC 6455 5.5.1
INFLATE_FAILED = "inflate-failed"  # RFC 7692 7.2.2
INFLATE_CONTEXT_LOST = "inflate-context-lost"  # earlier loss under context takeover
MESSAGE_TOO_LARGE = "message-too-large"  # payload above max_message_bytes
LOST_BYTES = "lost-bytes"  # bytes of this frame/message were never captured
RESYNC = "resync"  # first frame found by scanning after lost bytes
TRUNCATED = "truncated"  # connection ended mid-frame / mid-message
ANOMALY_TAGS: tuple[str, ...] = (
    UNMASKED_CLIENT_FRAME, MASKED_SERVER_FRAME, CONTROL_TOO_LONG, CONTROL_FRAGMENTED,
    RESERVED_OPCODE, RSV_WITHOUT_EXTENSION, RSV1_ON_CONTINUATION, RSV1_ON_CONTROL,
    CONTINUATION_WITHOUT_START, NEW_MESSAGE_INSIDE_FRAGMENTED, MESSAGE_INTERRUPTED,
    LENGTH_NOT_MINIMAL, LENGTH_MSB_SET, FRAME_AFTER_CLOSE, INVALID_UTF8, INVALID_CLOSE_CODE,
    CLOSE_BODY_1_BYTE, INFLATE_FAILED, INFLATE_CONTEXT_LOST, MESSAGE_TOO_LARGE, LOST_BYTES,
    RESYNC, TRUNCATED,
)
#: The tags of ``ws_frames`` / ``ws_messages`` rows, by the name every protocol module uses
#: (docs/REPORTS.md, "Anomaly and warning kinds").
ANOMALIES: tuple[str, ...] = ANOMALY_TAGS

# RFC 6455 7.4.1 plus the IANA registry (11.7): the codes below 3000 an endpoint may send.
# 1004 is reserved, 1005/1006/1015 must never be on the wire, 0-999 and 5000+ are invalid.
_SENDABLE_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                   1012, 1013, 1014))
_PREVIEW_CHARS = 64
_CTRL_KEEP = 4096  # bytes of an (oversized) close payload kept for code/reason
_WINDOW = 32768  # LZ77 window kept to restart an inflater after BFINAL (RFC 7692 7.2.3.4)
_MAX_RESTARTS = 16  # BFINAL blocks accepted in one message
_SYNC_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 7.2.2: appended before inflating a message
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")
_U16 = struct.Struct(">H").unpack_from
_U64 = struct.Struct(">Q").unpack_from
# Rows are built with tuple.__new__ (no per-field argument binding): about 3x cheaper than
# calling the NamedTuple, which matters at one or two rows per frame.  The tests check arity.
_row = tuple.__new__


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for ``key``: base64(SHA-1(key + GUID)), RFC 6455 section 4.2.2."""
    digest = hashlib.sha1((key + GUID).encode("latin-1", "replace")).digest()
    return base64.b64encode(digest).decode("ascii")


class DeflateParams(NamedTuple):
    """permessage-deflate parameters agreed in the server's response, RFC 7692 section 7.1.

    ``server_*`` govern what the server sends (s2c), ``client_*`` what the client sends (c2s).
    """

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int  # 15 when absent
    client_max_window_bits: int  # 15 when absent


def _split_top(value: str, sep: str) -> list[str]:
    """Split a header value on ``sep`` outside quoted-strings (RFC 7230 3.2.6)."""
    out: list[str] = []
    cur: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return [p for p in out if p]


def _parse_extensions(value: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Sec-WebSocket-Extensions (RFC 6455 section 9.1): [(name, [(param, value|None)])]."""
    exts: list[tuple[str, list[tuple[str, str | None]]]] = []
    for ext in _split_top(value, ","):
        parts = _split_top(ext, ";")
        if not parts:
            continue
        params: list[tuple[str, str | None]] = []
        for p in parts[1:]:
            name, eq, val = p.partition("=")
            v: str | None = None
            if eq:
                v = val.strip()
                if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                    v = v[1:-1].replace("\\", "")
            params.append((name.strip().lower(), v))
        exts.append((parts[0].lower(), params))
    return exts


def _deflate_from_response(
    params: list[tuple[str, str | None]],
) -> tuple[DeflateParams, bool]:
    """RFC 7692 7.1: the response's permessage-deflate parameters; (params, all valid)."""
    valid = True
    seen: set[str] = set()
    snct = cnct = False
    smwb = cmwb = 15
    for name, val in params:
        if name in seen:
            valid = False  # 7.1: a parameter must not appear twice
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if val is not None:
                valid = False
            if name[0] == "s":
                snct = True
            else:
                cnct = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            # 7.1.2: in a response both need a value in 8..15 (1*DIGIT, no leading zero)
            bits = int(val) if val is not None and val.isdigit() and val[0] != "0" else 0
            if not 8 <= bits <= 15:
                valid = False
                bits = 15
            if name[0] == "s":
                smwb = bits
            else:
                cmwb = bits
        else:
            valid = False
    return DeflateParams(snct, cnct, smwb, cmwb), valid


def negotiate(
    request_headers: dict[str, str],
    response_headers: dict[str, str],
    status: int = 101,
) -> tuple[bool, str, DeflateParams | None]:
    """Judge an opening handshake, RFC 6455 section 4.2.2 / 4.1 and RFC 7692 section 5, 7.1.

    ``request_headers`` / ``response_headers``: the upgrade GET's and the response's headers,
    names lower-case, values as on the wire, repeated headers joined with ``", "``.  ``status``
    is the response's status code, only echoed in ``detail`` (judging it is the caller's).

    Returns ``(ok, detail, deflate)``: ``ok`` when Sec-WebSocket-Accept matches the key;
    ``detail`` for the handshakes row, e.g. ``status=101 accept=valid subprotocol=chat
    extensions=permessage-deflate; client_no_context_takeover``; ``deflate`` the
    permessage-deflate parameters when the response accepted that extension, else None.
    """
    key = request_headers.get("sec-websocket-key", "").strip()
    accept = response_headers.get("sec-websocket-accept")
    if accept is None:
        verdict = "missing"
    elif not key:
        verdict = "no-key"
    elif accept.strip() == accept_key(key):
        verdict = "valid"
    else:
        verdict = "invalid"
    ok = verdict == "valid"
    detail = [f"status={status}", f"accept={verdict}"]

    proto = response_headers.get("sec-websocket-protocol")
    if proto is not None:
        detail.append(f"subprotocol={proto.strip()}")
        asked = request_headers.get("sec-websocket-protocol", "")
        if proto.strip() not in {p.strip() for p in asked.split(",")}:
            detail.append("subprotocol-not-offered")  # RFC 6455 4.1, client step 6

    deflate: DeflateParams | None = None
    ext_value = response_headers.get("sec-websocket-extensions")
    if ext_value is not None:
        detail.append(f"extensions={ext_value.strip()}")
        offered = request_headers.get("sec-websocket-extensions", "")
        offered_names = {name for name, _ in _parse_extensions(offered)}
        for name, params in _parse_extensions(ext_value):
            if name != "permessage-deflate":
                continue
            if deflate is not None:
                detail.append("deflate-repeated")  # RFC 7692 5: at most one accepted
                break
            deflate, valid = _deflate_from_response(params)
            if not valid:
                detail.append("deflate-params-invalid")
            if name not in offered_names:
                detail.append("extension-not-offered")  # RFC 6455 9.1
    return ok, " ".join(detail), deflate


def frames_tile(data: bytes, masked: bool, max_frames: int = 64) -> tuple[bool, bool]:
    """Whether ``data`` (the first payload seen on a connection) is WebSocket frames (RFC 6455
    5.2) from one side: valid opcodes, RSV1 at most (on data frames), the mask bit ``masked``
    (a client masks, a server does not), minimal length encodings, control frames short and
    final, and the frames ending exactly at the end of ``data`` (or one frame of 126 bytes or
    more still arriving). Returns (looks like WebSocket, RSV1 seen). Used to pick up a
    WebSocket whose opening handshake was not captured."""
    n, pos, frames, rsv1 = len(data), 0, 0, False
    while pos < n and frames < max_frames:
        if n - pos < 2:
            return False, rsv1
        b0, b1 = data[pos], data[pos + 1]
        op = b0 & 0x0F
        if b0 & 0x30 or op not in (0, 1, 2, 8, 9, 10) or bool(b1 & 0x80) != masked:
            return False, rsv1
        if b0 & 0x40:
            if op >= 8:
                return False, rsv1
            rsv1 = True
        ln, hl = b1 & 0x7F, 2
        if ln == 126:
            if n - pos < 4:
                return False, rsv1
            ln, hl = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            if ln < 126:
                return False, rsv1
        elif ln == 127:
            if n - pos < 10:
                return False, rsv1
            ln, hl = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            if ln < 65536 or ln >> 63:
                return False, rsv1
        if op >= 8 and (ln > 125 or not b0 & 0x80):
            return False, rsv1
        end = pos + hl + (4 if masked else 0) + ln
        frames += 1
        if end > n:  # still arriving: believable only for a lone, long frame
            return frames == 1 and ln >= 126 and n - pos >= hl + (4 if masked else 0), rsv1
        pos = end
    return pos == n and frames > 0, rsv1


class WsUpper(Protocol):
    """The layer above WebSocket (e.g. Engine.IO), fed one call per data message."""

    def ws_message(self, direction: int, ts: int, opcode: int, payload: bytes | None) -> None:
        """One data message (opcode 1 or 2) after reassembly and decompression.

        ``payload`` is None when it could not be decoded (lost bytes, inflate failure, size
        cap, connection ended mid-message). ``ts`` is the ts of the message's last frame.
        """


def _unmask(data: bytes | bytearray, mask: bytes, off: int) -> bytes:
    """RFC 6455 5.3: XOR with the 4-byte key; ``off`` = payload bytes already unmasked."""
    n = len(data)
    if off & 3:
        off &= 3
        mask = mask[off:] + mask[:off]
    return (
        int.from_bytes(data, "big") ^ int.from_bytes((mask * ((n >> 2) + 1))[:n], "big")
    ).to_bytes(n, "big")


class _Msg:
    """A data message being reassembled (RFC 6455 5.4)."""

    __slots__ = (
        "opcode", "ts_first", "frames", "wire", "size", "compressed", "decoding",
        "size_known", "payload_ok", "preview", "need", "dec", "utf8_bad", "chunks", "tags",
        "ts_last", "gap_open", "restarts",
    )

    def __init__(self, opcode: int, compressed: bool, keep: bool) -> None:
        self.opcode = opcode
        self.ts_first: int | None = None
        self.frames = 0
        self.wire = 0
        self.size = 0  # payload bytes so far, after decompression
        self.compressed = compressed
        self.decoding = True  # payload bytes still examined (unmask, inflate, UTF-8)
        self.size_known = True  # False: payload_bytes column is None
        self.payload_ok = True  # False: upper gets None
        self.preview = ""
        self.need = _PREVIEW_CHARS if opcode == OP_TEXT else 0
        self.dec: codecs.IncrementalDecoder | None = None
        self.utf8_bad = False
        self.chunks: list[bytes] | None = [] if keep else None
        self.tags: list[str] = []
        self.ts_last = 0
        self.gap_open = False  # lost bytes hide where this message ends
        self.restarts = 0  # inflater restarts after BFINAL blocks


class _Dir:
    """Parser state of one direction."""

    __slots__ = (
        "d", "name", "mask_bit", "buf", "scanning", "resynced", "orphan", "closed",
        "f_rem", "f_b0", "f_hl", "f_ln", "f_mask", "f_off", "f_tags", "f_lost", "f_ctrl",
        "f_compressed", "msg", "deflate", "takeover", "ctx_lost", "inflater", "hist",
        "hist_len", "scan_re",
    )

    def __init__(self, d: int, deflate: bool, takeover: bool) -> None:
        self.d = d
        self.name = DIRECTION_NAMES[d]
        self.mask_bit = 0x80 if d == C2S else 0  # RFC 6455 5.1: client masks, server doesn't
        self.buf = bytearray()
        self.scanning = False  # looking for a plausible header after lost bytes
        self.resynced = False  # the next frame was found by scanning
        self.orphan = False  # a continuation may follow lost bytes without a start
        self.closed = False  # a Close frame was sent in this direction
        # the frame whose header is parsed but whose payload is still arriving
        self.f_rem = 0
        self.f_b0 = 0
        self.f_hl = 0
        self.f_ln = 0
        self.f_mask: bytes | None = None
        self.f_off = 0
        self.f_tags: list[str] = []
        self.f_lost = False
        self.f_ctrl: bytearray | None = None
        self.f_compressed = False
        self.msg: _Msg | None = None
        self.deflate = deflate
        self.takeover = takeover
        self.ctx_lost = False
        self.inflater: zlib._Decompress | None = None
        self.hist: list[bytes] = []
        self.hist_len = 0
        # RFC 6455 5.2 header bytes a peer may legitimately send: valid opcode, RSV1 only
        # for a data message's first frame under deflate, FIN on control, right mask bit.
        b0s = [0x00, 0x01, 0x02, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8A]
        if deflate:
            b0s += [0x41, 0x42, 0xC1, 0xC2]
        b1 = b"[\x80-\xff]" if d == C2S else b"[\x00-\x7f]"
        self.scan_re = re.compile(
            b"[" + b"".join(b"\\x%02x" % b for b in b0s) + b"]" + b1, re.DOTALL
        )


class WebSocketDissector:
    """RFC 6455 section 5 frames and messages of one TCP connection after the 101.

    ``deflate``: the permessage-deflate parameters of :func:`negotiate` (RFC 7692), None when
    the extension was not negotiated. ``upper`` receives every text/binary message.
    ``max_message_bytes`` caps what is inflated and materialised per message.

    Rows: one :class:`WsFrame` per frame as it completes (``frame_index`` counts both
    directions in order of completion), one :class:`WsMessage` per message as it completes
    (``message_index`` likewise; a control frame is its own message).
    """

    def __init__(
        self,
        session_id: int,
        outbox: Outbox,
        deflate: DeflateParams | None = None,
        upper: WsUpper | None = None,
        max_message_bytes: int = 16 << 20,
    ) -> None:
        self.session_id = session_id
        self.outbox = outbox
        self.deflate = deflate
        self.upper = upper
        self.max_message_bytes = max(0, max_message_bytes)
        self._frame_index = 0
        self._message_index = 0
        self._done = False
        # RFC 7692 7.1.1: client_* parameters govern c2s, server_* govern s2c.
        if deflate is None:
            self._st = (_Dir(C2S, False, False), _Dir(S2C, False, False))
        else:
            self._st = (
                _Dir(C2S, True, not deflate.client_no_context_takeover),
                _Dir(S2C, True, not deflate.server_no_context_takeover),
            )
        # frames longer than this are not believed when resynchronising
        self._sane_len = max(self.max_message_bytes, 1 << 24)

    # ------------------------------------------------------------------ input

    def feed(self, direction: int, ts: int, data: bytes) -> None:
        """In-order stream bytes of one direction that arrived in a segment at ``ts`` (ns).

        RFC 6455 5.2 framing; a frame's ts is the ts of the feed that completed it.
        """
        if self._done or not data:
            return
        if type(data) is not bytes:
            data = bytes(data)  # e.g. a memoryview: slicing and mask arithmetic need bytes
        st = self._st[direction]
        if st.f_rem:
            # Inside a frame's payload: hand over what belongs to it without buffering.
            n = len(data)
            r = st.f_rem
            if n < r:
                self._payload(st, data)
                st.f_rem = r - n
                return
            self._payload(st, data if n == r else data[:r])
            st.f_rem = 0
            self._end_frame(st, ts)
            if n == r:
                return
            data = data[r:]
        buf = st.buf
        src: bytes | bytearray
        if st.scanning:
            buf += data
            if not self._scan(st):
                return
            src = buf
        elif buf:
            buf += data
            src = buf
        else:
            src = data  # common case: the segment starts on a frame boundary
        n = len(src)
        pos = 0
        sink_frames = self.outbox.ws_frames
        sink_msgs = self.outbox.ws_messages
        upper = self.upper
        cap = self.max_message_bytes
        sid = self.session_id
        dname = st.name
        mask_bit = st.mask_bit
        masked = mask_bit != 0
        while n - pos >= 2:
            b0 = src[pos]
            b1 = src[pos + 1]
            ln = b1 & 0x7F
            odd = False  # anything the fast path does not handle
            if ln < 126:
                hl = 2
            elif ln == 126:
                hl = 4
            else:
                hl = 10
            if b1 & 0x80:
                hl += 4
            if n - pos < hl:
                break
            if ln == 126:
                ln = _U16(src, pos + 2)[0]
                odd = ln < 126
            elif ln == 127:
                ln = _U64(src, pos + 2)[0]
                odd = ln < 65536 or ln >> 63 != 0
            a = pos + hl
            end = a + ln
            op = b0 & 0x0F
            if (
                end <= n
                and not odd
                and (b0 & 0x70) == 0
                and (b1 & 0x80) == mask_bit
                and (op == 1 or op == 2)
                and b0 & 0x80
                and st.msg is None
                and not st.closed
                and not st.resynced
                and not st.orphan
                and ln <= cap
            ):
                # Fast path, RFC 6455 5.4: an unfragmented, uncompressed, well-formed data
                # message complete in this segment (by far the most common frame).
                payload: bytes | None = None
                if op == 1 or upper is not None:
                    if mask_bit:
                        m = src[a - 4 : a]
                        payload = (
                            int.from_bytes(src[a:end], "big")
                            ^ int.from_bytes((m * ((ln >> 2) + 1))[:ln], "big")
                        ).to_bytes(ln, "big")
                    else:
                        payload = bytes(src[a:end])
                anomaly = ""
                preview = ""
                if op == 1:
                    assert payload is not None
                    if payload.isascii():
                        preview = payload[:_PREVIEW_CHARS].decode("ascii")
                    else:
                        try:
                            preview = payload.decode("utf-8")[:_PREVIEW_CHARS]
                        except UnicodeDecodeError as e:
                            preview = payload[: e.start].decode("utf-8")[:_PREVIEW_CHARS]
                            anomaly = INVALID_UTF8
                fi = self._frame_index
                self._frame_index = fi + 1
                opname = OPCODE_NAMES[op]
                sink_frames.append(_row(WsFrame, (
                    sid, fi, ts, dname, True, False, False, False, op, opname,
                    masked, ln, hl, False, None, None, "",
                )))
                mi = self._message_index
                self._message_index = mi + 1
                sink_msgs.append(_row(WsMessage, (
                    sid, mi, ts, ts, dname, opname, 1, hl + ln, ln, False, preview, anomaly,
                )))
                if upper is not None:
                    upper.ws_message(direction, ts, op, payload)
                pos = end
                continue
            self._begin_frame(st, b0, b1, hl, ln, odd, bytes(src[a - 4 : a]) if b1 & 0x80 else None)
            if end <= n:
                if ln:
                    self._payload(st, src[a:end])
                self._end_frame(st, ts)
                pos = end
            else:
                if a < n:
                    self._payload(st, src[a:n])
                st.f_rem = end - n
                pos = n
                break
        if src is buf:
            if pos:
                del buf[:pos]
        elif pos < n:
            buf += src[pos:]

    def gap(self, direction: int, ts: int, nbytes: int) -> None:
        """``nbytes`` of this direction were lost (never captured).

        The frame in progress is flagged ``lost-bytes`` (its row is written when it ends, at
        ``ts`` if the gap reaches past it) and its message becomes undecodable.  When the gap
        ends where we know the next frame starts, parsing continues there; otherwise the next
        feeds are scanned for a plausible RFC 6455 5.2 header.  Under context takeover
        (RFC 7692 7.2.3) the direction's later compressed messages become undecodable.
        """
        if self._done or nbytes <= 0:
            return
        st = self._st[direction]
        if st.f_rem:
            st.f_lost = True
            m = st.msg
            if m is not None and not st.f_b0 & 0x100:
                self._lose(st, m)
            if nbytes < st.f_rem:
                # The gap is inside this frame's payload: we still know where the frame ends.
                st.f_rem -= nbytes
                st.f_off += nbytes
                return
            nbytes -= st.f_rem
            st.f_rem = 0
            self._end_frame(st, ts)
            if nbytes == 0:
                return  # the next feed starts on a frame header
        # Header bytes were lost: where the next frame starts is unknown.
        st.buf.clear()
        st.scanning = True
        st.orphan = True
        m = st.msg
        if m is not None:
            self._lose(st, m)
            m.size_known = False
            m.gap_open = True
        if st.takeover:
            st.ctx_lost = True  # the lost bytes may have held compressed messages

    def finish(self, ts: int) -> None:
        """End of the TCP connection: an incomplete frame or message gets ``truncated``."""
        if self._done:
            return
        self._done = True
        for st in self._st:
            if st.f_rem:
                st.f_tags.append(TRUNCATED)
                st.f_rem = 0
                self._end_frame(st, ts, truncated=True)
            m = st.msg
            if m is not None:
                st.msg = None
                if TRUNCATED not in m.tags:
                    m.tags.append(TRUNCATED)
                m.payload_ok = False
                if m.compressed:
                    m.size_known = False
                self._emit_msg(st, m, m.ts_last if m.ts_first is not None else ts)
            st.buf = bytearray()
        closed = getattr(self.upper, "ws_closed", None)
        if closed is not None:
            closed(ts)

    # --------------------------------------------------------------- frames

    def _header_tags(self, st: _Dir, b0: int, b1: int, ln: int, odd: bool) -> list[str]:
        """RFC 6455 5.2 / RFC 7692 6.1 checks of one frame header."""
        tags: list[str] = []
        op = b0 & 0x0F
        if st.resynced:
            tags.append(RESYNC)
            st.resynced = False
        if (b1 & 0x80) != st.mask_bit:
            tags.append(MASKED_SERVER_FRAME if st.d == S2C else UNMASKED_CLIENT_FRAME)
        if b0 & 0x30 or (b0 & 0x40 and not st.deflate):
            tags.append(RSV_WITHOUT_EXTENSION)
        elif b0 & 0x40:
            if op == OP_CONT:
                tags.append(RSV1_ON_CONTINUATION)
            elif op >= 8:
                tags.append(RSV1_ON_CONTROL)
        if 2 < op < 8 or op > 10:
            tags.append(RESERVED_OPCODE)
        if op >= 8:
            if not b0 & 0x80:
                tags.append(CONTROL_FRAGMENTED)
            if ln > 125:
                tags.append(CONTROL_TOO_LONG)
        if odd:
            if ln >> 63:
                tags.append(LENGTH_MSB_SET)
            if ln < 126 or (ln < 65536 and (b1 & 0x7F) == 127):
                tags.append(LENGTH_NOT_MINIMAL)
        if st.closed:
            tags.append(FRAME_AFTER_CLOSE)
        return tags

    def _begin_frame(
        self, st: _Dir, b0: int, b1: int, hl: int, ln: int, odd: bool, mask: bytes | None
    ) -> None:
        """A frame header was parsed: set up the frame and, for data frames, the message."""
        tags = self._header_tags(st, b0, b1, ln, odd)
        op = b0 & 0x0F
        st.f_hl = hl
        st.f_ln = ln
        st.f_mask = mask
        st.f_off = 0
        st.f_tags = tags
        st.f_lost = False
        st.f_compressed = False
        if op > 2:
            # Control (or reserved) frame: its own message (RFC 6455 5.5), flagged by bit 8
            # of f_b0. Only a Close payload is needed.
            st.f_b0 = b0 | 0x100
            st.f_ctrl = bytearray() if op == OP_CLOSE else None
            return
        st.f_b0 = b0
        st.f_ctrl = None
        m = st.msg
        if op != OP_CONT:
            if m is not None:
                # RFC 6455 5.4: a new message may not start inside a fragmented one; after
                # lost bytes that hid the old message's end it simply ended unseen.
                if not m.gap_open:
                    tags.append(NEW_MESSAGE_INSIDE_FRAGMENTED)
                    m.tags.append(MESSAGE_INTERRUPTED)
                m.payload_ok = False
                if m.compressed and m.decoding:
                    m.size_known = False
                    if st.takeover:
                        st.ctx_lost = True  # the rest of it never reached the window
                st.msg = None
                self._emit_msg(st, m, m.ts_last)
            compressed = st.deflate and bool(b0 & 0x40)  # RFC 7692 6.1
            st.f_compressed = compressed
            m = st.msg = _Msg(op, compressed, self.upper is not None)
            if compressed:
                if st.ctx_lost:
                    m.tags.append(INFLATE_CONTEXT_LOST)
                    m.decoding = False
                    m.payload_ok = False
                    m.size_known = False
                elif not st.takeover:
                    st.inflater = None  # RFC 7692 7.2.2: a fresh context for every message
                    st.hist.clear()
                    st.hist_len = 0
        elif m is None:
            m = st.msg = _Msg(OP_CONT, False, False)
            if st.orphan:
                m.tags.append(LOST_BYTES)  # its start was in the lost bytes
                m.size_known = False
                m.gap_open = True
            else:
                tags.append(CONTINUATION_WITHOUT_START)
            m.decoding = False
            m.payload_ok = False
        st.orphan = False
        m.frames += 1
        m.wire += hl + ln
        if not m.compressed:
            self._count(m, ln)  # known from the header, even if payload bytes get lost

    def _payload(self, st: _Dir, chunk: bytes | bytearray) -> None:
        """Bytes of the current frame's payload, masked as on the wire (RFC 6455 5.3)."""
        off = st.f_off
        st.f_off = off + len(chunk)
        if st.f_lost:
            return
        if st.f_b0 & 0x100:
            ctrl = st.f_ctrl
            if ctrl is not None and len(ctrl) < _CTRL_KEEP:
                ctrl += chunk[: _CTRL_KEEP - len(ctrl)]
            return
        m = st.msg
        assert m is not None
        if m.compressed:
            if m.decoding:
                mask = st.f_mask
                self._inflate(st, m, _unmask(chunk, mask, off) if mask else bytes(chunk))
            return
        # Unmask/copy only what someone needs: text for UTF-8 and preview, any data for upper.
        text = m.opcode == OP_TEXT and not m.utf8_bad and m.decoding
        if text or m.chunks is not None:
            mask = st.f_mask
            p = _unmask(chunk, mask, off) if mask else bytes(chunk)
            if text:
                self._text(m, p)
            if m.chunks is not None:
                m.chunks.append(p)

    def _count(self, m: _Msg, n: int) -> None:
        """Uncompressed payload bytes: count them, enforce the size cap."""
        m.size += n
        if m.size > self.max_message_bytes and m.payload_ok:
            m.tags.append(MESSAGE_TOO_LARGE)
            m.payload_ok = False
            m.chunks = None

    def _end_frame(self, st: _Dir, ts: int, truncated: bool = False) -> None:
        """The current frame is complete (or ended by a gap / the end of the connection)."""
        b0 = st.f_b0
        op = b0 & 0x0F
        tags = st.f_tags
        if st.f_lost:
            tags.append(LOST_BYTES)
        close_code: int | None = None
        close_reason: str | None = None
        ln = st.f_ln
        if op == OP_CLOSE and st.f_ctrl is not None and not st.f_lost and not truncated:
            body = st.f_ctrl
            mask = st.f_mask
            if mask and body:
                body = bytearray(_unmask(body, mask, 0))
            close_code, close_reason = self._close_body(body, tags)
        if op == OP_CLOSE:
            st.closed = True
        fin = bool(b0 & 0x80)
        compressed = st.f_compressed
        fi = self._frame_index
        self._frame_index = fi + 1
        self.outbox.ws_frames.append(_row(WsFrame, (
            self.session_id, fi, ts, st.name, fin, bool(b0 & 0x40), bool(b0 & 0x20),
            bool(b0 & 0x10), op, OPCODE_NAMES[op], st.f_mask is not None, ln, st.f_hl,
            compressed, close_code, close_reason, ";".join(tags),
        )))
        st.f_ctrl = None
        if b0 & 0x100:
            mi = self._message_index
            self._message_index = mi + 1
            self.outbox.ws_messages.append(_row(WsMessage, (
                self.session_id, mi, ts, ts, st.name, OPCODE_NAMES[op], 1, st.f_hl + ln,
                None if st.f_lost or truncated else ln, False, "", ";".join(tags),
            )))
            return
        m = st.msg
        assert m is not None
        if m.ts_first is None:
            m.ts_first = ts
        m.ts_last = ts
        for t in tags:
            if t not in m.tags:
                m.tags.append(t)
        if fin and not truncated:
            st.msg = None
            self._end_message(st, m)
            self._emit_msg(st, m, ts)

    def _close_body(self, body: bytearray, tags: list[str]) -> tuple[int | None, str | None]:
        """RFC 6455 5.5.1, 7.4: a Close body is empty or a 2-byte code + UTF-8 reason."""
        if not body:
            return None, None
        if len(body) == 1:
            tags.append(CLOSE_BODY_1_BYTE)
            return None, None
        code = (body[0] << 8) | body[1]
        if not (code in _SENDABLE_CLOSE_CODES or 3000 <= code <= 4999):
            tags.append(INVALID_CLOSE_CODE)
        raw = bytes(body[2:])
        try:
            reason = raw.decode("utf-8")
        except UnicodeDecodeError:
            tags.append(INVALID_UTF8)
            reason = raw.decode("utf-8", "replace")
        return code, reason

    # ------------------------------------------------------------- messages

    def _lose(self, st: _Dir, m: _Msg) -> None:
        """Bytes of message ``m`` were lost: its payload is gone, maybe the deflate context."""
        if LOST_BYTES not in m.tags:
            m.tags.append(LOST_BYTES)
        m.payload_ok = False
        m.chunks = None
        if m.compressed:
            m.size_known = False
            if m.decoding and st.takeover:
                st.ctx_lost = True  # RFC 7692 7.2.3: later messages refer to the lost bytes
        m.decoding = False

    def _text(self, m: _Msg, data: bytes) -> None:
        """RFC 6455 5.6 / 8.1: incremental UTF-8 check of a text message, and its preview."""
        if m.dec is None:
            if data.isascii():
                if m.need:
                    s = data[: m.need].decode("ascii")
                    m.preview += s
                    m.need -= len(s)
                return
            m.dec = _Utf8Decoder()
        try:
            s = m.dec.decode(data)
        except UnicodeDecodeError as e:
            m.utf8_bad = True
            m.tags.append(INVALID_UTF8)
            # e.object = undecoded bytes held back + data; all before e.start is valid
            s = e.object[: e.start].decode("utf-8")
        if m.need and s:
            s = s[: m.need]
            m.preview += s
            m.need -= len(s)

    def _new_inflater(self, st: _Dir) -> zlib._Decompress:
        # After a BFINAL block (RFC 7692 7.2.3.4) the stream restarts with the same window.
        if st.hist:
            return zlib.decompressobj(-15, zdict=b"".join(st.hist)[-_WINDOW:])
        return zlib.decompressobj(-15)

    def _inflate(self, st: _Dir, m: _Msg, data: bytes) -> None:
        """RFC 7692 7.2.2: inflate a compressed message's bytes, bounded by the size cap."""
        inf = st.inflater
        if inf is None:
            inf = st.inflater = zlib.decompressobj(-15)
        cap = self.max_message_bytes
        try:
            while True:
                out = inf.decompress(data, cap - m.size + 1)
                if out:
                    m.size += len(out)
                    if m.size > cap:
                        # Deflate bomb or just too big: stop here, memory and time bounded.
                        # The bytes within the cap are still checked, as when fed in pieces.
                        if m.opcode == OP_TEXT and not m.utf8_bad:
                            self._text(m, out[: len(out) - (m.size - cap)])
                        m.tags.append(MESSAGE_TOO_LARGE)
                        self._undecodable(st, m)
                        return
                    if m.opcode == OP_TEXT and not m.utf8_bad:
                        self._text(m, out)
                    if m.chunks is not None:
                        m.chunks.append(out)
                    # keep (a reference to) the last 32 KiB of output, not a whole big message
                    if len(out) > _WINDOW:
                        out = out[-_WINDOW:]
                    hist = st.hist
                    hist.append(out)
                    st.hist_len += len(out)
                    while st.hist_len - len(hist[0]) >= _WINDOW:
                        st.hist_len -= len(hist.pop(0))
                if not inf.eof:
                    return
                # BFINAL (RFC 7692 7.2.3.4): restart with the same window.  Bounded, or a
                # stream of empty final blocks would cost one inflater each.
                m.restarts += 1
                if m.restarts > _MAX_RESTARTS:
                    raise zlib.error("too many final blocks")
                data = inf.unused_data
                inf = st.inflater = self._new_inflater(st)
                if not data:
                    return
        except zlib.error:
            # How far a broken stream decodes before zlib notices depends on how it was cut
            # into frames and segments: forget what it decoded so the row does not.
            m.tags = [t for t in m.tags if t != INVALID_UTF8]
            m.tags.append(INFLATE_FAILED)
            m.preview = ""
            m.need = 0
            self._undecodable(st, m)

    def _undecodable(self, st: _Dir, m: _Msg) -> None:
        """Stop inflating ``m``; under context takeover the direction's window is gone."""
        m.decoding = False
        m.payload_ok = False
        m.size_known = False
        m.chunks = None
        st.inflater = None
        if st.takeover:
            st.ctx_lost = True

    def _end_message(self, st: _Dir, m: _Msg) -> None:
        """The message's last frame arrived: flush the inflater, finish the UTF-8 check."""
        if m.compressed and m.decoding:
            self._inflate(st, m, _SYNC_TAIL)
            if not st.takeover:
                st.inflater = None
        if m.dec is not None and not m.utf8_bad and m.decoding:
            try:
                m.dec.decode(b"", True)
            except UnicodeDecodeError:
                m.utf8_bad = True
                m.tags.append(INVALID_UTF8)

    def _emit_msg(self, st: _Dir, m: _Msg, ts_last: int) -> None:
        """Write the message row and hand a text/binary message to the upper layer."""
        mi = self._message_index
        self._message_index = mi + 1
        self.outbox.ws_messages.append(_row(WsMessage, (
            self.session_id, mi, ts_last if m.ts_first is None else m.ts_first, ts_last,
            st.name, OPCODE_NAMES[m.opcode], m.frames, m.wire,
            m.size if m.size_known else None, m.compressed, m.preview, ";".join(m.tags),
        )))
        if self.upper is not None and (m.opcode == OP_TEXT or m.opcode == OP_BINARY):
            payload = None
            if m.payload_ok and m.chunks is not None:
                payload = b"".join(m.chunks)
            self.upper.ws_message(st.d, ts_last, m.opcode, payload)

    # ---------------------------------------------------------------- resync

    def _scan(self, st: _Dir) -> bool:
        """After lost bytes: drop bytes up to a plausible RFC 6455 5.2 frame header.

        Plausible: a valid opcode, RSV bits the negotiation allows, FIN on control frames, the
        mask bit this direction requires, a minimal and sane length, and, when the buffer holds
        it, another plausible header right after the frame.  True when one was found.
        """
        buf = st.buf
        n = len(buf)
        search = st.scan_re.search
        i = 0
        while True:
            hit = search(buf, i)
            if hit is None:
                i = max(i, n - 1)  # the last byte may start a header
                break
            i = hit.start()
            verdict = self._plausible(st, buf, i, n)
            if verdict > 0:
                del buf[:i]
                st.scanning = False
                st.resynced = True
                return True
            if verdict < 0:
                break  # need more bytes to judge
            i += 1
        del buf[:i]
        return False

    def _plausible(self, st: _Dir, buf: bytearray, i: int, n: int) -> int:
        """1: plausible header at ``i``; 0: not; -1: not enough bytes to tell."""
        b0 = buf[i]
        b1 = buf[i + 1]
        ln = b1 & 0x7F
        if b0 & 0x08 and ln > 125:
            return 0
        hl = 2 + (2 if ln == 126 else 8 if ln == 127 else 0) + (4 if b1 & 0x80 else 0)
        if n - i < hl:
            return -1
        if ln == 126:
            ln = _U16(buf, i + 2)[0]
            if ln < 126:
                return 0
        elif ln == 127:
            ln = _U64(buf, i + 2)[0]
            if ln < 65536 or ln > self._sane_len:
                return 0
        end = i + hl + ln
        if end + 2 <= n and st.scan_re.match(buf, end) is None:
            return 0
        return 1


