"""Engine.IO polling payloads: the packets of one HTTP long-polling body.

v4 "Packet encoding / HTTP long-polling": packets joined by ``\\x1e``. v3 "Payload": string
payloads ``<length>:<packet>`` (length in UTF-16 code units), binary payloads (XHR2,
``application/octet-stream``) and v3 "JSONP" bodies. The body's Content-Encoding is removed first
(:func:`content_decoded`). Pure functions: :mod:`dissect.protocols.engineio.tracker` calls them.
"""

from __future__ import annotations

import json
import re
import zlib
from urllib.parse import unquote_plus

from dissect.protocols.engineio.packets import (
    EIO_BAD_ENCODING,
    EIO_BAD_LENGTH,
    EIO_TRUNCATED,
    DecodedPacket,
    text_packet,
    v3_binary_packet,
)
from dissect.protocols.socketio import join_tags

MAX_LENGTH_DIGITS = 10  # v3 length prefixes: a body longer than 10**10 bytes cannot exist
MAX_INFLATED = 16 << 20  # a compressed polling body inflates to at most this (engine.io: 1 MB)

_SEPARATOR = b"\x1e"  # v4 payload record separator
_V3_PREFIX = re.compile(rb"([0-9]{1,%d}):" % MAX_LENGTH_DIGITS)
_V3_TEXT_START = re.compile(rb"[0-9]+:")
_BINARY_DIGITS = bytes.maketrans(bytes(range(10)), b"0123456789")
_JSONP_ESCAPED_NEWLINE = re.compile(r"(\\)?\\n")


def split_v4(body: bytes) -> list[DecodedPacket]:
    """v4 polling payload: packets joined by the record separator ``\\x1e``."""
    if not body:
        return []
    return [text_packet(part, 4) for part in body.split(_SEPARATOR)]


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


def split_v3_text(body: bytes) -> list[DecodedPacket]:
    """v3 string payload ``<length>:<packet>...`` (v3 "Payload"), length in UTF-16 code units.

    A prefix that is not ``digits:`` ends the decoding: the rest of the body becomes one row
    tagged ``eio-bad-length``; a length past the end of the body gives a row tagged
    ``eio-truncated`` with what is there. Packets before either are kept.
    """
    out: list[DecodedPacket] = []
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
                t, buf, off, binary, size, anomaly = text_packet(body[start:], 3)
                out.append((t, buf, off, binary, size, join_tags(anomaly, EIO_TRUNCATED)))
                break
            if end == -2:
                rest = body[pos:]
                out.append((-1, rest, 0, False, len(rest), EIO_BAD_LENGTH))
                break
            chunk = body[start:end]
        out.append(text_packet(chunk, 3))
        pos = end
    return out


def split_v3_binary(body: bytes) -> list[DecodedPacket]:
    """v3 binary payload (XHR2, ``application/octet-stream``), v3 "Payload".

    Records ``<0|1><length as bytes 0-9>0xFF<packet>``: 0 = string packet (UTF-8, length in
    bytes), 1 = binary packet whose first byte is the packet type (length includes it).
    """
    out: list[DecodedPacket] = []
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
            pkt = text_packet(record, 3)
        else:
            pkt = v3_binary_packet(record)
        if truncated:
            t, buf, off, binary, size, anomaly = pkt
            pkt = (t, buf, off, binary, size, join_tags(anomaly, EIO_TRUNCATED))
        out.append(pkt)
        pos = end
    return out


def jsonp_response(body: bytes) -> bytes | None:
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


def jsonp_request(body: bytes) -> bytes:
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
) -> tuple[list[DecodedPacket], int | None]:
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

