"""HTTP/1.x syntax (RFC 9112): start lines, field lines, lengths; the parser's states and bounds."""

from __future__ import annotations

import re

# RFC 9110 section 5.6.2: tchar.
TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
TOKEN = re.compile(rb"[" + TCHAR + rb"]{1,64}")
# RFC 9112 section 3: method SP request-target SP HTTP-version (only 1.x is ours: HTTP/2's
# "PRI * HTTP/2.0" preface is not a request). The target is anything but controls and spaces.
REQUEST_LINE = re.compile(rb"([" + TCHAR + rb"]{1,64}) ([^\x00-\x20\x7f]+) (HTTP/1\.[0-9])")
# RFC 9112 section 4: HTTP-version SP status-code SP [reason-phrase]; like h11, also accept the
# SP before an empty reason missing, which real servers send.
STATUS_LINE = re.compile(rb"(HTTP/1\.[0-9]) ([0-9]{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?")
LOOKS_LIKE_REQUEST = re.compile(rb"[A-Z][A-Z0-9_\-]{1,23} (?:[^\x00-\x20\x7f]|\Z)")
CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")  # 16 hex digits: 2**64, beyond any real chunk
DIGITS = re.compile(r"[0-9]{1,19}")

MAX_CHUNK_LINE = 4096  # chunk-size plus extensions; a longer "line" is not chunked coding
MAX_HUNT_LINE = 8192  # longest start line looked for while resynchronising
MAX_PENDING = 1024  # requests waiting for a response; beyond, the oldest is reported unanswered

# Every tag the HTTP dissector writes in the ``http`` table's anomaly column (docs/REPORTS.md).
ANOMALIES: tuple[str, ...] = (
    "bad-request-line", "bad-status-line", "bad-header", "header-too-large", "truncated-headers",
    "bad-content-length", "bad-transfer-encoding", "te-and-content-length", "bad-chunk", "truncated-body",
    "lost-bytes", "no-response", "response-without-request",
)
#: The names this dissector counts in summary.json's ``decode``.
DECODE_COUNTERS: tuple[str, ...] = ("http-bytes-not-parsed",)

# Parser states of one direction.
START = 0  # between messages
LINE = 1  # in the start line
FIELDS = 2  # start line parsed, in the field section
BODY = 3  # Content-Length body
CHUNK_SIZE = 4  # chunk-size line (RFC 9112 section 7.1)
CHUNK_DATA = 5
CHUNK_END = 6  # the CRLF after chunk-data
TRAILER = 7  # trailer section (RFC 9112 section 7.1.2)
EOF_BODY = 8  # response body delimited by the close (RFC 9112 section 6.3 rule 8)
SKIP_HEAD = 9  # skipping an oversized header section
HUNT = 10  # framing lost: looking for the next start line
PAUSED = 11  # c2s after a request asking to switch protocols, until the response says
DEAD = 12  # not HTTP (any more): bytes are counted, not parsed
HANDED = 13  # the connection belongs to another dissector


def looks_like_http_request(data: bytes) -> bool:
    """Cheap check on a connection's first c2s bytes: an HTTP/1.x request-line's start.

    RFC 9112 section 3: a method token and SP (registered methods are upper case; RFC 9112
    section 2.2 allows empty lines before it). When the first line is complete, it must be a
    whole HTTP/1.x request-line, which rules out HTTP/2's connection preface.
    """
    start = 0
    while start < 4 and data[start : start + 1] in (b"\r", b"\n"):
        start += 1
    if LOOKS_LIKE_REQUEST.match(data, start) is None:
        return False
    nl = data.find(b"\n", start, start + MAX_HUNT_LINE)
    if nl < 0:
        return True
    return REQUEST_LINE.fullmatch(strip_cr(data[start:nl])) is not None


def strip_cr(line: bytes | bytearray) -> bytes | bytearray:
    # RFC 9112 section 2.2: a recipient may take a bare LF as a line end and ignore a CR before it
    return line[:-1] if line[-1:] == b"\r" else line


def field_text(raw: bytes | bytearray) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # RFC 9110 section 5.5: obs-text is opaque octets; latin-1 keeps every byte
        return raw.decode("latin-1")


def find_head_end(data: bytes | bytearray, start: int, end: int) -> int:
    """Index just past the empty line closing a field section, or -1 (RFC 9112 section 2.1)."""
    e = data.find(b"\r\n\r\n", start, end)
    # bare-LF senders (RFC 9112 section 2.2): only look for LF LF before the first CRLF CRLF
    f = data.find(b"\n\n", start, e if e >= 0 else end)
    if f >= 0:
        return f + 2
    return e + 4 if e >= 0 else -1


def parse_fields(block: bytes | bytearray, anomaly: list[str]) -> dict[str, str]:
    """Field lines (RFC 9112 section 5): names lower-cased, repeated fields joined with ", "."""
    headers: dict[str, str] = {}
    last: str | None = None
    for raw in block.split(b"\n"):
        line = strip_cr(raw)
        if not line:
            continue
        if line[0] in (32, 9):
            # obs-fold (RFC 9112 section 5.2): a continuation, replaced by one SP
            if last is None:
                anomaly.append("bad-header")
            else:
                headers[last] += " " + field_text(line.strip(b" \t"))
            continue
        colon = line.find(b":")
        name = line[:colon]
        # RFC 9112 section 5.1: no whitespace between field name and colon
        if colon <= 0 or TOKEN.fullmatch(name) is None:
            anomaly.append("bad-header")
            last = None
            continue
        key = name.decode("ascii").lower()
        value = field_text(line[colon + 1 :].strip(b" \t"))
        if key in headers:
            headers[key] += ", " + value
        else:
            headers[key] = value
        last = key
    return headers


def content_length(value: str | None) -> int | None:
    """Content-Length (RFC 9110 section 8.6): one decimal, or a list of identical ones."""
    if value is None:
        return None
    parts = {p.strip() for p in value.split(",")}
    if len(parts) != 1:
        return None
    (v,) = parts
    return int(v) if DIGITS.fullmatch(v) else None
