"""RFC 6455 section 5 framing: opcodes, the anomaly tags, the checks of a frame header.

:func:`judge_header` is the one judge of whether the bytes at an offset hold a plausible frame
header: :func:`frames_tile` (sniffing a connection whose handshake was not captured) and
:func:`find_header` (the dissector's resync scan after lost bytes) use it, each with its own
:class:`HeaderRules`. :func:`header_anomalies` tags what a parsed header gets wrong; also the
masking (5.3) and the Close body (5.5.1, 7.4).
"""

from __future__ import annotations

import functools
import re
import struct
from typing import NamedTuple

__all__ = [
    "OPCODE_NAMES",
    "ANOMALY_TAGS",
    "HeaderRules",
    "judge_header",
    "header_start_re",
    "find_header",
    "header_anomalies",
    "frames_tile",
    "unmask",
    "close_body",
]

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
ANOMALIES: tuple[str, ...] = ANOMALY_TAGS  # every tag of the ws_frames / ws_messages anomaly columns

# RFC 6455 7.4.1 plus the IANA registry (11.7): the codes below 3000 an endpoint may send.
# 1004 is reserved, 1005/1006/1015 must never be on the wire, 0-999 and 5000+ are invalid.
_SENDABLE_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                   1012, 1013, 1014))

# Verdicts of judge_header.
PLAUSIBLE = 1
IMPLAUSIBLE = 0
INCOMPLETE = -1  # the bytes end before the header does
_DEFINED_OPS = (1 << OP_CONT) | (1 << OP_TEXT) | (1 << OP_BINARY) | (1 << OP_CLOSE) | (1 << OP_PING) \
    | (1 << OP_PONG)
_U16 = struct.Struct(">H").unpack_from
_U64 = struct.Struct(">Q").unpack_from


class HeaderRules(NamedTuple):
    """What :func:`judge_header` accepts besides the RFC 6455 5.2 musts (a defined opcode, RSV2
    and RSV3 clear, control frames final and at most 125 bytes, minimal length encodings).

    ``mask_bit``: 0x80 when the frames must be masked (a client's), 0 when they must not (5.1).
    ``rsv1_ops``: bit ``op`` set when a frame of opcode ``op`` may carry RSV1 (RFC 7692 6.1
    allows it on a message's first frame; a sniffer that cannot know also allows continuations).
    ``max_len``: the longest payload believed.
    """

    mask_bit: int
    rsv1_ops: int
    max_len: int


# RSV1 allowed on: no frame; a data message's first frame (RFC 7692 6.1); any data frame.
RSV1_NONE = 0
RSV1_MESSAGE_START = (1 << OP_TEXT) | (1 << OP_BINARY)
RSV1_ANY_DATA = RSV1_MESSAGE_START | (1 << OP_CONT)
MAX_LEN = (1 << 63) - 1  # RFC 6455 5.2: the most significant bit of a 64-bit length is 0


def first_byte_ok(b0: int, rsv1_ops: int) -> bool:
    """A frame's first byte: a defined opcode, RSV2/RSV3 clear, RSV1 only on ``rsv1_ops``,
    FIN on a control frame (RFC 6455 5.2, 5.5; RFC 7692 6.1)."""
    op = b0 & 0x0F
    if b0 & 0x30 or not (_DEFINED_OPS >> op) & 1:
        return False
    if b0 & 0x40 and not (rsv1_ops >> op) & 1:
        return False
    return op < 8 or bool(b0 & 0x80)


def judge_header(buf: bytes | bytearray, i: int, n: int, rules: HeaderRules) -> tuple[int, int, int]:
    """Judge the RFC 6455 5.2 frame header at ``buf[i:n]`` by ``rules``.

    Returns ``(verdict, hl, ln)``: verdict :data:`PLAUSIBLE`, :data:`IMPLAUSIBLE` or
    :data:`INCOMPLETE` (``buf`` ends inside the header); ``hl`` the header's length with the
    masking key, ``ln`` the payload length (as far as read). ``hl`` is 0 when the first two bytes
    already rule the header out (or are not there).
    """
    if n - i < 2:
        return INCOMPLETE, 0, 0
    b0 = buf[i]
    b1 = buf[i + 1]
    ln = b1 & 0x7F
    if not first_byte_ok(b0, rules.rsv1_ops) or (b1 & 0x80) != rules.mask_bit or (b0 & 0x08 and ln > 125):
        return IMPLAUSIBLE, 0, 0
    hl = 2 + (2 if ln == 126 else 8 if ln == 127 else 0) + (4 if b1 & 0x80 else 0)
    if n - i < hl:
        return INCOMPLETE, hl, ln
    if ln == 126:
        ln = _U16(buf, i + 2)[0]
        if ln < 126:
            return IMPLAUSIBLE, hl, ln
    elif ln == 127:
        ln = _U64(buf, i + 2)[0]
        if ln < 65536 or ln > rules.max_len:
            return IMPLAUSIBLE, hl, ln
    return PLAUSIBLE, hl, ln


@functools.cache
def header_start_re(mask_bit: int, rsv1_ops: int) -> re.Pattern[bytes]:
    """A regex matching the first two bytes :func:`judge_header` accepts with rules of this
    ``mask_bit`` and ``rsv1_ops`` (the length aside): a fast search for candidate headers."""
    b0s = b"".join(b"\\x%02x" % b for b in range(256) if first_byte_ok(b, rsv1_ops))
    b1 = b"[\\x80-\\xff]" if mask_bit else b"[\\x00-\\x7f]"
    return re.compile(b"[" + b0s + b"]" + b1, re.DOTALL)


def _plausible(buf: bytes | bytearray, i: int, n: int, rules: HeaderRules) -> int:
    """:func:`judge_header`'s verdict, but IMPLAUSIBLE when ``buf`` holds the whole frame and the
    two bytes after it cannot start another header."""
    verdict, hl, ln = judge_header(buf, i, n, rules)
    end = i + hl + ln
    if verdict == PLAUSIBLE and end + 2 <= n \
            and header_start_re(rules.mask_bit, rules.rsv1_ops).match(buf, end) is None:
        return IMPLAUSIBLE
    return verdict


def find_header(buf: bytes | bytearray, rules: HeaderRules) -> tuple[int, bool]:
    """After lost bytes (RFC 6455 5.2 frames carry no sync marker): the first plausible frame
    header in ``buf``, judged by :func:`judge_header` and by the bytes after the frame when
    ``buf`` holds them.

    Returns ``(offset, found)``; when not found, no header starts before ``offset`` (the one at
    ``offset`` may, once more bytes arrive to judge it).
    """
    n = len(buf)
    search = header_start_re(rules.mask_bit, rules.rsv1_ops).search
    i = 0
    while True:
        hit = search(buf, i)
        if hit is None:
            return max(i, n - 1), False  # the last byte may start a header
        i = hit.start()
        verdict = _plausible(buf, i, n, rules)
        if verdict == PLAUSIBLE:
            return i, True
        if verdict == INCOMPLETE:
            return i, False  # need more bytes to judge
        i += 1


def header_anomalies(b0: int, b1: int, ln: int, odd: bool, mask_bit: int, deflate: bool) -> list[str]:
    """The RFC 6455 5.2 / RFC 7692 6.1 anomaly tags of a frame header: ``b0``, ``b1`` its first
    two bytes, ``ln`` its payload length, ``odd`` a length encoding to look at (not minimal or
    MSB set), ``mask_bit`` what the sender must set (5.1), ``deflate`` permessage-deflate
    negotiated."""
    tags: list[str] = []
    op = b0 & 0x0F
    if (b1 & 0x80) != mask_bit:
        tags.append(UNMASKED_CLIENT_FRAME if mask_bit else MASKED_SERVER_FRAME)
    if b0 & 0x30 or (b0 & 0x40 and not deflate):
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
    return tags


def frames_tile(data: bytes, masked: bool, max_frames: int = 64) -> tuple[bool, bool]:
    """Whether ``data`` (the first payload seen on a connection) is WebSocket frames (RFC 6455
    5.2) from one side: plausible headers by :func:`judge_header` (RSV1 on any data frame, the
    mask bit ``masked``: a client masks, a server does not), the frames ending exactly at the end
    of ``data`` (or one frame of 126 bytes or more still arriving). Returns (looks like
    WebSocket, RSV1 seen). Used to pick up a WebSocket whose opening handshake was not captured."""
    rules = HeaderRules(0x80 if masked else 0, RSV1_ANY_DATA, MAX_LEN)
    n, pos, frames, rsv1 = len(data), 0, 0, False
    while pos < n and frames < max_frames:
        verdict, hl, ln = judge_header(data, pos, n, rules)
        if hl and data[pos] & 0x40:
            rsv1 = True
        if verdict != PLAUSIBLE:
            return False, rsv1
        end = pos + hl + ln
        frames += 1
        if end > n:  # still arriving: believable only for a lone, long frame
            return frames == 1 and ln >= 126, rsv1
        pos = end
    return pos == n and frames > 0, rsv1


def unmask(data: bytes | bytearray, mask: bytes, off: int) -> bytes:
    """RFC 6455 5.3: XOR with the 4-byte key; ``off`` = payload bytes already unmasked."""
    n = len(data)
    if off & 3:
        off &= 3
        mask = mask[off:] + mask[:off]
    return (
        int.from_bytes(data, "big") ^ int.from_bytes((mask * ((n >> 2) + 1))[:n], "big")
    ).to_bytes(n, "big")



def close_body(body: bytes | bytearray, tags: list[str]) -> tuple[int | None, str | None]:
    """RFC 6455 5.5.1, 7.4: a Close body is empty or a 2-byte code + UTF-8 reason.

    Returns (code, reason); what is wrong is appended to ``tags``.
    """
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
