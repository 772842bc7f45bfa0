"""HTTP/1.x dissector: a sans-IO parser of both directions of one TCP connection.

Message syntax is RFC 9112: start lines (section 3 request-line, section 4 status-line), field
lines (section 5), message body length (section 6.3) and the chunked transfer coding (section
7.1). The parser is fed the in-order bytes of each direction with their timestamps (integer
nanoseconds); it pairs responses with requests in FIFO order (pipelining, RFC 9112 section 9.3.2),
appends one :class:`~dissect.records.HttpExchange` row per pair to the :class:`Outbox`, and reports
complete messages to an optional upper layer (Engine.IO polling, the WebSocket handshake). On a
101 Switching Protocols (RFC 9110 section 15.2.2) the connection is handed to the stream dissector
the upper layer returns.

Design, after h11's split of "readers" per framing kind, but passive: a recipient on the wire
cannot ask for a retransmission or answer 400, so every protocol error becomes an anomaly tag on a
row and the parser either keeps its framing, resynchronises at the next plausible start line, or
stops parsing that direction. Header blocks are found with ``bytes.find``; body bytes are counted,
and copied only when the upper layer asked for them. Buffers are bounded by ``max_header_bytes``
(headers, chunk lines, resynchronisation) and ``max_body_bytes`` (kept bodies).

Anomaly tags: ``bad-request-line``, ``bad-status-line``, ``bad-header``, ``header-too-large``,
``truncated-headers``, ``bad-content-length``, ``bad-transfer-encoding``,
``te-and-content-length``, ``bad-chunk``, ``truncated-body``, ``lost-bytes``, ``no-response``,
``response-without-request``.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from dissect.records import C2S, S2C, HttpExchange, Outbox, ms

__all__ = [
    "HttpDissector",
    "HttpRequest",
    "HttpResponse",
    "HttpUpper",
    "looks_like_http_request",
    "ANOMALIES",
    "DECODE_COUNTERS",
]

#: Every tag this dissector writes in the ``http`` table's ``anomaly`` column (docs/REPORTS.md,
#: "Anomaly and warning kinds"; tests/test_anomaly_kinds.py keeps the two in step).
ANOMALIES: tuple[str, ...] = (
    "bad-request-line", "bad-status-line", "bad-header", "header-too-large", "truncated-headers",
    "bad-content-length", "bad-transfer-encoding", "te-and-content-length", "bad-chunk", "truncated-body",
    "lost-bytes", "no-response", "response-without-request",
)
#: The names this dissector counts in summary.json's ``decode``.
DECODE_COUNTERS: tuple[str, ...] = ("http-bytes-not-parsed",)


@dataclass(slots=True)
class HttpRequest:
    """One request: request-line (RFC 9112 section 3) and field section (section 5).

    ``headers`` has lower-cased names; a repeated field is joined with ``", "`` (RFC 9110 section
    5.3). ``body`` is the payload (chunked coding removed) only when the upper layer's
    ``want_body`` returned True, cut at ``max_body_bytes``, and None when bytes of it were lost;
    ``body_bytes`` always counts the whole payload.
    """

    ts: int  # ts of the data that carried the request-line's first byte
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes | None = field(default=None, repr=False)
    body_bytes: int = 0


@dataclass(slots=True)
class HttpResponse:
    """One response: status-line (RFC 9112 section 4) and field section; body as in HttpRequest."""

    ts: int  # ts of the data that carried the status-line's first byte
    version: str
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes | None = field(default=None, repr=False)
    body_bytes: int = 0



# What HTTP held when it stopped at a 101 (h11's ``trailing_data``), in order: (direction, ts,
# bytes), or a count of lost bytes in place of bytes.
Trailing = list[tuple[int, int, bytes | int]]


class HttpUpper(Protocol):
    """The layer above HTTP (Engine.IO polling, the WebSocket handshake)."""

    def want_body(self, request: HttpRequest) -> bool:
        """Called when the request's header section is complete: keep both bodies?"""
        ...

    def http_request(self, session_id: int, request: HttpRequest) -> None:
        """The request is complete, body included."""
        ...

    def http_response(
        self, session_id: int, request: HttpRequest | None, response: HttpResponse
    ) -> None:
        """The final response is complete (not called for 1xx, including 101)."""
        ...

    def http_switched(
        self, session_id: int, request: HttpRequest, response: HttpResponse, trailing: Trailing
    ) -> None:
        """A 101: HTTP has stopped; ``trailing`` is what it held of the new protocol (both
        directions, in order). The owner of the connection decides where it and the rest go."""
        ...


# RFC 9110 section 5.6.2: tchar.
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = re.compile(rb"[" + _TCHAR + rb"]{1,64}")
# RFC 9112 section 3: method SP request-target SP HTTP-version (only 1.x is ours: HTTP/2's
# "PRI * HTTP/2.0" preface is not a request). The target is anything but controls and spaces.
_REQUEST_LINE = re.compile(rb"([" + _TCHAR + rb"]{1,64}) ([^\x00-\x20\x7f]+) (HTTP/1\.[0-9])")
# RFC 9112 section 4: HTTP-version SP status-code SP [reason-phrase]; like h11, also accept the
# SP before an empty reason missing, which real servers send.
_STATUS_LINE = re.compile(rb"(HTTP/1\.[0-9]) ([0-9]{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?")
_LOOKS_LIKE_REQUEST = re.compile(rb"[A-Z][A-Z0-9_\-]{1,23} (?:[^\x00-\x20\x7f]|\Z)")
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")  # 16 hex digits: 2**64, beyond any real chunk
_DIGITS = re.compile(r"[0-9]{1,19}")

_MAX_CHUNK_LINE = 4096  # chunk-size plus extensions; a longer "line" is not chunked coding
_MAX_HUNT_LINE = 8192  # longest start line looked for while resynchronising
_MAX_PENDING = 1024  # requests waiting for a response; beyond, the oldest is reported unanswered

# Parser states of one direction.
_START = 0  # between messages
_LINE = 1  # in the start line
_FIELDS = 2  # start line parsed, in the field section
_BODY = 3  # Content-Length body
_CHUNK_SIZE = 4  # chunk-size line (RFC 9112 section 7.1)
_CHUNK_DATA = 5
_CHUNK_END = 6  # the CRLF after chunk-data
_TRAILER = 7  # trailer section (RFC 9112 section 7.1.2)
_EOF_BODY = 8  # response body delimited by the close (RFC 9112 section 6.3 rule 8)
_SKIP_HEAD = 9  # skipping an oversized header section
_HUNT = 10  # framing lost: looking for the next start line
_PAUSED = 11  # c2s after a request asking to switch protocols, until the response says
_DEAD = 12  # not HTTP (any more): bytes are counted, not parsed
_HANDED = 13  # the connection belongs to another dissector


def looks_like_http_request(data: bytes) -> bool:
    """Cheap check on a connection's first c2s bytes: an HTTP/1.x request-line's start.

    RFC 9112 section 3: a method token and SP (registered methods are upper case; RFC 9112
    section 2.2 allows empty lines before it). When the first line is complete, it must be a
    whole HTTP/1.x request-line, which rules out HTTP/2's connection preface.
    """
    start = 0
    while start < 4 and data[start : start + 1] in (b"\r", b"\n"):
        start += 1
    if _LOOKS_LIKE_REQUEST.match(data, start) is None:
        return False
    nl = data.find(b"\n", start, start + _MAX_HUNT_LINE)
    if nl < 0:
        return True
    return _REQUEST_LINE.fullmatch(_strip_cr(data[start:nl])) is not None


def _strip_cr(line: bytes | bytearray) -> bytes | bytearray:
    # RFC 9112 section 2.2: a recipient may take a bare LF as a line end and ignore a CR before it
    return line[:-1] if line[-1:] == b"\r" else line


def _text(raw: bytes | bytearray) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # RFC 9110 section 5.5: obs-text is opaque octets; latin-1 keeps every byte
        return raw.decode("latin-1")


def _find_head_end(data: bytes | bytearray, start: int, end: int) -> int:
    """Index just past the empty line closing a field section, or -1 (RFC 9112 section 2.1)."""
    e = data.find(b"\r\n\r\n", start, end)
    # bare-LF senders (RFC 9112 section 2.2): only look for LF LF before the first CRLF CRLF
    f = data.find(b"\n\n", start, e if e >= 0 else end)
    if f >= 0:
        return f + 2
    return e + 4 if e >= 0 else -1


def _parse_fields(block: bytes | bytearray, anomaly: list[str]) -> dict[str, str]:
    """Field lines (RFC 9112 section 5): names lower-cased, repeated fields joined with ", "."""
    headers: dict[str, str] = {}
    last: str | None = None
    for raw in block.split(b"\n"):
        line = _strip_cr(raw)
        if not line:
            continue
        if line[0] in (32, 9):
            # obs-fold (RFC 9112 section 5.2): a continuation, replaced by one SP
            if last is None:
                anomaly.append("bad-header")
            else:
                headers[last] += " " + _text(line.strip(b" \t"))
            continue
        colon = line.find(b":")
        name = line[:colon]
        # RFC 9112 section 5.1: no whitespace between field name and colon
        if colon <= 0 or _TOKEN.fullmatch(name) is None:
            anomaly.append("bad-header")
            last = None
            continue
        key = name.decode("ascii").lower()
        value = _text(line[colon + 1 :].strip(b" \t"))
        if key in headers:
            headers[key] += ", " + value
        else:
            headers[key] = value
        last = key
    return headers


def _content_length(value: str | None) -> int | None:
    """Content-Length (RFC 9110 section 8.6): one decimal, or a list of identical ones."""
    if value is None:
        return None
    parts = {p.strip() for p in value.split(",")}
    if len(parts) != 1:
        return None
    (v,) = parts
    return int(v) if _DIGITS.fullmatch(v) else None


class _Exchange:
    """A request and its response while they are being paired."""

    __slots__ = (
        "request", "response", "want", "anomaly", "request_done", "response_done", "emitted",
        "s2c_gap", "overtaken", "pauses", "final_seen", "expect_continue", "ts0",
    )

    def __init__(self, request: HttpRequest | None, ts0: int) -> None:
        self.request = request
        self.response: HttpResponse | None = None
        self.want = False
        self.anomaly: list[str] = []
        self.request_done = request is None
        self.response_done = False
        self.emitted = False
        self.s2c_gap = False  # s2c bytes were lost while this waited for its response
        self.overtaken = False  # a later request came before this one's response
        self.pauses = False  # asks to switch protocols (Upgrade or CONNECT)
        self.final_seen = False
        self.expect_continue = False
        self.ts0 = ts0  # row timestamp when there is neither request nor response


class _Half:
    """Parser state of one direction."""

    __slots__ = (
        "direction", "state", "buf", "scan", "line_end", "msg_ts", "start", "msg", "ex",
        "remaining", "keep", "parts", "kept", "lost", "bol", "stash", "stash_bytes", "ignored",
    )

    def __init__(self, direction: int) -> None:
        self.direction = direction
        self.state = _START
        self.buf = bytearray()  # unparsed bytes of a header section, chunk line or hunt tail
        self.scan = 0  # where to resume searching, relative to the start of buf
        self.line_end = 0  # offset of the start line's LF from the message start
        self.msg_ts = 0
        self.start: tuple[str, str, str] | tuple[str, int, str] | None = None
        self.msg: HttpRequest | HttpResponse | None = None
        self.ex: _Exchange | None = None
        self.remaining = 0
        self.keep = False
        self.parts: list[bytes] = []
        self.kept = 0
        self.lost = False  # bytes of the current body were lost (its framing was not)
        self.bol = False  # while hunting: the first buffered byte starts a line
        self.stash: list[tuple[int, bytes | int]] = []  # c2s bytes (or gaps) while _PAUSED
        self.stash_bytes = 0
        self.ignored = 0  # bytes not parsed (_DEAD)


class HttpDissector:
    """HTTP/1.x over one TCP connection; a :class:`StreamDissector`."""

    def __init__(
        self,
        session_id: int,
        outbox: Outbox,
        upper: HttpUpper | None = None,
        max_header_bytes: int = 64 << 10,
        max_body_bytes: int = 8 << 20,
    ) -> None:
        self.session_id = session_id
        self.outbox = outbox
        self.upper = upper
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._halves = (_Half(C2S), _Half(S2C))
        # Requests waiting for their response, oldest first; None marks where c2s framing was
        # lost, so an unknown number of requests may be missing there.
        self._queue: deque[_Exchange | None] = deque()
        self._pipelining = False  # the client was seen to pipeline (RFC 9112 section 9.3.2)
        self._paused: _Exchange | None = None

    @property
    def ignored_bytes(self) -> tuple[int, int]:
        """Bytes per direction left unparsed because they were not HTTP (or a tunnel)."""
        return (self._halves[C2S].ignored, self._halves[S2C].ignored)

    # -- StreamDissector ------------------------------------------------------------------------

    def feed(self, direction: int, ts: int, data: bytes) -> None:
        if data:
            self._feed_half(self._halves[direction], ts, data)

    def gap(self, direction: int, ts: int, nbytes: int) -> None:
        if nbytes > 0:
            self._gap_half(self._halves[direction], ts, nbytes)

    def finish(self, ts: int) -> None:
        c2s, s2c = self._halves
        if c2s.ignored or s2c.ignored:
            self.outbox.counters["http-bytes-not-parsed"] += c2s.ignored + s2c.ignored
        if c2s.state == _HANDED:
            return
        # c2s first: a response finishing at the close may be waiting for its request to end
        for h in self._halves:
            self._finish_half(h, ts)
        while self._queue:
            ex = self._queue.popleft()
            if ex is not None:
                ex.anomaly.append("no-response")
                self._emit(ex)

    # -- one direction --------------------------------------------------------------------------

    def _feed_half(self, h: _Half, ts: int, data: bytes | bytearray) -> None:
        st = h.state
        if st == _DEAD:
            h.ignored += len(data)
        elif st == _PAUSED:
            self._stash(h, ts, bytes(data))
        elif st != _HANDED:
            self._run(h, ts, data)
        else:  # after a switch the connection's owner sends the bytes elsewhere; these are not HTTP
            h.ignored += len(data)

    def _stash(self, h: _Half, ts: int, item: bytes | int) -> None:
        """Keep c2s bytes sent after an upgrade request until the response decides their fate."""
        if isinstance(item, bytes):
            room = self.max_header_bytes - h.stash_bytes
            if len(item) > room:
                # bounded: what does not fit is handed on as lost bytes
                if room > 0:
                    h.stash.append((ts, item[:room]))
                    h.stash_bytes += room
                item = len(item) - max(room, 0)
            else:
                h.stash.append((ts, item))
                h.stash_bytes += len(item)
                return
        if h.stash and isinstance(h.stash[-1][1], int):
            prev_ts, prev = h.stash[-1]
            h.stash[-1] = (prev_ts, int(prev) + item)
        else:
            h.stash.append((ts, item))

    def _gap_half(self, h: _Half, ts: int, nbytes: int) -> None:
        st = h.state
        if st in (_DEAD, _HANDED):
            return
        if st == _PAUSED:
            self._stash(h, ts, nbytes)
            return
        ex = h.ex
        if ex is not None and (
            st == _EOF_BODY or (st in (_BODY, _CHUNK_DATA) and nbytes <= h.remaining)
        ):
            # The body's length is known (RFC 9112 section 6.3), so the hole lies inside it and
            # the framing survives: count the bytes, keep going, but the body is no longer whole.
            ex.anomaly.append("lost-bytes")
            h.lost = True
            h.parts = []
            msg = h.msg
            assert msg is not None
            msg.body_bytes += nbytes
            if st != _EOF_BODY:
                h.remaining -= nbytes
                if h.remaining == 0:
                    if st == _BODY:
                        self._message_done(h)
                    else:
                        h.state = _CHUNK_END
            return
        self._drop(h, "lost-bytes")
        self._lose_sync(h)

    def _finish_half(self, h: _Half, ts: int) -> None:
        st = h.state
        if st == _EOF_BODY:
            self._message_done(h)  # RFC 9112 section 6.3 rule 8: the close ends the body
        elif st == _LINE:
            # the start line may be whole even though its line end never came
            if h.buf:
                h.start = self._parse_start(h, _strip_cr(h.buf))
            if h.start is not None:
                self._drop(h, "truncated-headers")
        elif st == _FIELDS:
            self._drop(h, "truncated-headers")
        elif st in (_BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER):
            ex = h.ex
            msg = h.msg
            if (
                ex is not None and msg is not None and h.direction == C2S
                and ex.expect_continue and ex.final_seen and msg.body_bytes == 0
            ):
                # RFC 9110 section 10.1.1: after a final response to "Expect: 100-continue" the
                # client may close instead of sending the content; nothing is missing.
                self._drop(h, None)
            else:
                self._drop(h, "truncated-body")
        h.buf = bytearray()

    def _run(self, h: _Half, ts: int, data: bytes | bytearray) -> None:
        """Parse ``data``, the next in-order bytes of h's direction, carried at ``ts``."""
        if h.buf:
            h.buf += data
            data = h.buf
            h.buf = bytearray()
        pos = 0
        n = len(data)
        while pos < n:
            st = h.state
            if st == _BODY or st == _CHUNK_DATA:
                take = min(h.remaining, n - pos)
                self._body(h, data, pos, take)
                pos += take
                h.remaining -= take
                if h.remaining == 0:
                    if st == _BODY:
                        self._message_done(h)
                    else:
                        h.state = _CHUNK_END
            elif st == _START:
                # RFC 9112 section 2.2: ignore empty lines before a start line
                while pos < n and data[pos] in (10, 13):
                    pos += 1
                if pos < n:
                    h.msg_ts = ts
                    h.state = _LINE
                    h.scan = 0
            elif st == _LINE:
                nl = data.find(b"\n", pos + h.scan)
                if nl < 0 or nl - pos > self.max_header_bytes:
                    # (an overlong line is judged the same whether or not its end has come)
                    if not self._prefix_ok(h, data[pos : pos + 72]):
                        self._garbage(h)
                    elif n - pos > self.max_header_bytes:
                        sp = data.find(b" ", pos, pos + 72)
                        if h.direction == C2S and sp > pos:
                            # _prefix_ok vouched for the method: the row can at least name it
                            h.start = (data[pos:sp].decode("ascii"), "", "")
                        self._too_large(h)
                        pos = n - 3 if nl < 0 else nl - 1
                    else:
                        h.scan = n - pos
                        break
                    continue
                h.start = self._parse_start(h, _strip_cr(data[pos:nl]))
                if h.start is None:
                    self._garbage(h)
                    continue
                h.line_end = nl - pos
                h.scan = max(0, nl - pos - 1)  # the line's own CRLF may begin the empty line
                h.state = _FIELDS
            elif st == _FIELDS:
                end = _find_head_end(data, pos + h.scan, n)
                if end < 0:
                    if n - pos > self.max_header_bytes:
                        self._too_large(h)
                        pos = n - 3
                    else:
                        h.scan = max(0, n - pos - 3)
                        break
                    continue
                if end - pos > self.max_header_bytes:
                    # the same verdict however the bytes were segmented
                    self._too_large(h)
                    h.state = _HUNT
                    pos = end
                    continue
                anomaly: list[str] = []
                headers = _parse_fields(data[pos + h.line_end + 1 : end], anomaly)
                pos = end
                if h.direction == C2S:
                    self._request_head(h, headers, anomaly)
                elif self._response_head(h, ts, headers, anomaly, data, end):
                    return  # switched protocols: the rest went to the new dissector
            elif st == _CHUNK_SIZE:
                nl = data.find(b"\n", pos + h.scan)
                if nl < 0:
                    if n - pos > _MAX_CHUNK_LINE:
                        self._bad_chunk(h)
                        continue
                    h.scan = n - pos
                    break
                if nl - pos > _MAX_CHUNK_LINE:
                    self._bad_chunk(h)
                    continue
                line = _strip_cr(data[pos:nl])
                semi = line.find(b";")  # chunk extensions (RFC 9112 section 7.1.1) are ignored
                size = (line if semi < 0 else line[:semi]).strip(b" \t")
                if _CHUNK_SIZE_RE.fullmatch(size) is None:
                    self._bad_chunk(h)
                    continue
                pos = nl + 1
                h.remaining = int(size, 16)
                h.scan = 0
                h.state = _CHUNK_DATA if h.remaining else _TRAILER
            elif st == _CHUNK_END:
                b0 = data[pos]
                if b0 == 10:
                    pos += 1
                elif b0 == 13 and pos + 1 < n and data[pos + 1] == 10:
                    pos += 2
                elif b0 == 13 and pos + 1 == n:
                    break
                else:
                    self._bad_chunk(h)
                    continue
                h.state = _CHUNK_SIZE
                h.scan = 0
            elif st == _TRAILER:
                if h.scan == 0 and data[pos] in (10, 13):
                    # no trailer fields: the CRLF ending the chunked body follows last-chunk
                    if data[pos] == 10:
                        pos += 1
                    elif pos + 1 == n:
                        break
                    elif data[pos + 1] == 10:
                        pos += 2
                    else:
                        self._bad_chunk(h)
                        continue
                    self._message_done(h)
                    continue
                end = _find_head_end(data, pos + h.scan, n)
                if end < 0:
                    if n - pos > self.max_header_bytes:
                        self._drop(h, "header-too-large")
                        self._lose_sync(h)
                        h.state = _SKIP_HEAD
                        pos = n - 3
                    else:
                        h.scan = max(1, n - pos - 3)
                        break
                    continue
                if end - pos > self.max_header_bytes:
                    self._drop(h, "header-too-large")
                    self._lose_sync(h)
                    pos = end
                    continue
                # trailer fields (RFC 9112 section 7.1.2) are not merged into the header section
                pos = end
                self._message_done(h)
            elif st == _EOF_BODY:
                self._body(h, data, pos, n - pos)
                pos = n
            elif st == _SKIP_HEAD:
                end = _find_head_end(data, pos, n)
                if end < 0:
                    pos = max(pos, n - 3)
                    break
                pos = end
                h.state = _HUNT
                h.bol = True
                h.scan = 0
            elif st == _HUNT:
                found = self._hunt(h, data, pos, n)
                if found < 0:
                    pos = -found - 1
                    break
                pos = found
                h.state = _START
            elif st == _PAUSED:
                self._stash(h, ts, bytes(data[pos:]))
                pos = n
            elif st == _DEAD:
                h.ignored += n - pos
                pos = n
            else:  # _HANDED
                return
        if pos < n:
            # keep the unparsed tail; reuse the buffer when it is ours, to avoid copies
            if isinstance(data, bytearray):
                del data[:pos]
                h.buf = data
            else:
                h.buf = bytearray(data[pos:])

    def _prefix_ok(self, h: _Half, head: bytes | bytearray) -> bool:
        """Could ``head`` still grow into a start line? Catches binary garbage early."""
        if h.direction == S2C:
            return b"HTTP/1."[: len(head)] == head[:7]
        sp = head.find(b" ")
        if sp < 0:
            return len(head) <= 64 and (not head or _TOKEN.fullmatch(head) is not None)
        return sp > 0 and _TOKEN.fullmatch(head[:sp]) is not None

    def _parse_start(
        self, h: _Half, line: bytes | bytearray
    ) -> tuple[str, str, str] | tuple[str, int, str] | None:
        if h.direction == C2S:
            m = _REQUEST_LINE.fullmatch(line)
            if m is None:
                return None
            return (m[1].decode("ascii"), _text(m[2]), m[3].decode("ascii"))
        m = _STATUS_LINE.fullmatch(line)
        if m is None:
            return None
        return (m[1].decode("ascii"), int(m[2]), _text(m[3] or b""))

    def _hunt(self, h: _Half, data: bytes | bytearray, pos: int, n: int) -> int:
        """Look for a start line at a line start (resynchronisation after lost framing).

        Returns its index, or ``-(k + 1)`` where ``k`` is where the tail worth keeping begins.
        Responses start with ``HTTP/1.`` (RFC 9112 section 4); a request-line is recognised by
        its ``SP HTTP/1.x`` end and checked whole (section 3).
        """
        if h.direction == S2C:
            i = data.find(b"HTTP/1.", pos + h.scan)
            while i >= 0:
                if (i > pos and data[i - 1] == 10) or (i == pos and h.bol):
                    nl = data.find(b"\n", i, i + _MAX_HUNT_LINE)
                    if nl < 0 and n - i < _MAX_HUNT_LINE:
                        h.scan = 0
                        h.bol = True
                        return -(i + 1)  # a candidate: wait for its line end
                    if nl >= 0 and _STATUS_LINE.fullmatch(_strip_cr(data[i:nl])):
                        return i
                i = data.find(b"HTTP/1.", i + 1)
            keep_max = 7
        else:
            j = data.find(b" HTTP/1.", pos + h.scan)
            while j >= 0:
                r = data.rfind(b"\n", pos, j)
                ls = r + 1 if r >= 0 else (pos if h.bol else -1)
                if ls >= 0 and j - ls < _MAX_HUNT_LINE:
                    nl = data.find(b"\n", j, ls + _MAX_HUNT_LINE)
                    if nl < 0 and n - ls < _MAX_HUNT_LINE:
                        h.scan = j - ls
                        h.bol = True
                        return -(ls + 1)
                    if nl >= 0 and _REQUEST_LINE.fullmatch(_strip_cr(data[ls:nl])):
                        return ls
                j = data.find(b" HTTP/1.", j + 1)
            keep_max = _MAX_HUNT_LINE
        # nothing yet: keep the last partial line if it may still become a start line
        r = data.rfind(b"\n", pos, n)
        k = r + 1 if r >= 0 else (pos if h.bol else n)
        if n - k > keep_max:
            k = n
        h.bol = k < n or r == n - 1 or (n == pos and h.bol)
        h.scan = max(0, n - k - 8)
        return -(k + 1)

    # -- message events -------------------------------------------------------------------------

    def _body(self, h: _Half, data: bytes | bytearray, pos: int, take: int) -> None:
        msg = h.msg
        assert msg is not None
        msg.body_bytes += take
        if h.keep and not h.lost:
            room = self.max_body_bytes - h.kept
            if room > 0:
                piece = bytes(data[pos : pos + min(take, room)])
                h.parts.append(piece)
                h.kept += len(piece)

    def _framing(self, h: _Half, headers: dict[str, str], ex: _Exchange) -> int:
        """Body framing per RFC 9112 section 6.3 rules 3-8; returns a state or -1 (invalid).

        _START means no body. HEAD/1xx/204/304/CONNECT (rules 1-2) are the caller's.
        """
        te = headers.get("transfer-encoding")
        cl = headers.get("content-length")
        if te is not None:
            codings = [c.strip().lower() for c in te.split(",") if c.strip()]
            if cl is not None:
                # rule 3: Transfer-Encoding wins; both present hints at smuggling (section 11.2)
                ex.anomaly.append("te-and-content-length")
            if codings and codings[-1] == "chunked":
                return _CHUNK_SIZE
            if h.direction == S2C and codings:
                return _EOF_BODY  # rule 3: a response's length is then the close
            ex.anomaly.append("bad-transfer-encoding")  # rule 3: a request's length is unknowable
            return -1
        if cl is not None:
            length = _content_length(cl)
            if length is None:
                ex.anomaly.append("bad-content-length")  # rule 5: unrecoverable
                return -1
            h.remaining = length
            return _BODY if length else _START
        return _START if h.direction == C2S else _EOF_BODY  # rules 7 and 8

    def _add_request(self, ex: _Exchange) -> None:
        q = self._queue
        if q and q[-1] is not None and not q[-1].final_seen:
            q[-1].overtaken = True
        q.append(ex)
        if len(q) > _MAX_PENDING:
            # bounded memory: the oldest request is given up as unanswered
            old = q.popleft()
            if old is not None:
                old.anomaly.append("no-response")
                self._emit(old)

    def _lose_sync(self, h: _Half) -> None:
        """Framing of h's direction is lost: resynchronise, and remember what may be missing."""
        h.state = _HUNT
        h.bol = True
        h.scan = 0
        h.buf = bytearray()
        if h.direction == C2S:
            if not self._queue or self._queue[-1] is not None:
                self._queue.append(None)
        else:
            for ex in self._queue:
                if ex is not None:
                    ex.s2c_gap = True

    def _pair(self, resp_ts: int) -> tuple[_Exchange | None, bool]:
        """The request a final response answers (FIFO), and whether c2s bytes were lost there.

        Where framing was lost the queue is ambiguous; two rules of thumb resolve it: a response
        cannot precede its request, and a client that does not pipeline sends its next request
        only after the previous response.
        """
        q = self._queue
        while q:
            head = q[0]
            if head is None:
                q.popleft()
                nxt = q[0] if q else None
                if nxt is not None and nxt.request is not None and nxt.request.ts <= resp_ts:
                    continue  # assume the lost c2s bytes held no whole request
                return None, True
            if (
                head.s2c_gap and not self._pipelining and len(q) > 1
                and (nxt := q[1]) is not None and nxt.request is not None
                and nxt.request.ts <= resp_ts
            ):
                # this non-pipelining client sent the next request, so the answer was lost
                q.popleft()
                head.anomaly.append("lost-bytes")
                head.anomaly.append("no-response")
                self._emit(head)
                continue
            q.popleft()
            if head.overtaken and not head.s2c_gap:
                self._pipelining = True
            return head, False
        return None, False

    def _pair_or_orphan(self, ts: int) -> _Exchange:
        ex, lost = self._pair(ts)
        if ex is None:
            ex = _Exchange(None, ts)
            ex.anomaly.append("response-without-request")
            if lost:
                ex.anomaly.append("lost-bytes")
        return ex

    def _request_head(self, h: _Half, headers: dict[str, str], anomaly: list[str]) -> None:
        start = h.start
        assert start is not None
        method, target, version = start
        assert isinstance(target, str)
        req = HttpRequest(h.msg_ts, method, target, version, headers)
        ex = _Exchange(req, h.msg_ts)
        ex.anomaly.extend(anomaly)
        ex.pauses = "upgrade" in headers or method == "CONNECT"
        ex.expect_continue = "100-continue" in headers.get("expect", "").lower()
        self._add_request(ex)
        ex.want = bool(self.upper.want_body(req)) if self.upper is not None else False
        self._begin_body(h, req, ex)
        self._apply_framing(h, self._framing(h, headers, ex))

    def _apply_framing(self, h: _Half, framing: int) -> None:
        """Go on after a header section as its framing says (RFC 9112 section 6.3)."""
        if framing < 0:
            # rules 3 and 5: an unusable length; a server answers 400 and closes, so do we
            self._drop(h, None)
            self._kill(h)
        elif framing == _START:
            self._message_done(h)
        else:
            h.state = framing

    def _response_head(
        self,
        h: _Half,
        ts: int,
        headers: dict[str, str],
        anomaly: list[str],
        data: bytes | bytearray,
        end: int,
    ) -> bool:
        """A response's header section is complete. True if the connection was handed off."""
        start = h.start
        assert start is not None
        version, status, reason = start
        assert isinstance(status, int)
        resp = HttpResponse(h.msg_ts, version, status, reason, headers)
        h.start = None
        if 100 <= status < 200 and status != 101:
            # interim response (RFC 9110 section 15.2), e.g. 100 Continue: the final one follows
            h.state = _START
            return False
        ex = self._pair_or_orphan(resp.ts)
        ex.response = resp
        ex.final_seen = True
        ex.anomaly.extend(anomaly)
        req = ex.request
        method = req.method if req is not None else ""
        if status == 101:
            self._switch(ex, resp, ts, data, end)
            return True
        self._begin_body(h, resp, ex)
        if method == "CONNECT" and 200 <= status < 300:
            # RFC 9112 section 6.3 rule 2: a tunnel from the end of the header section
            self._message_done(h)
            for half in self._halves:
                self._kill(half)
            return False
        if method == "HEAD" or status in (204, 304):
            self._apply_framing(h, _START)  # rule 1: no body, whatever the fields say
        else:
            self._apply_framing(h, self._framing(h, headers, ex))
        paused = self._paused
        if paused is not None and (ex is paused or paused.emitted):
            self._resume()  # not switching: the client carries on with HTTP/1.1
        return False

    def _begin_body(self, h: _Half, msg: HttpRequest | HttpResponse, ex: _Exchange) -> None:
        h.msg = msg
        h.ex = ex
        h.start = None
        h.keep = ex.want
        h.parts = []
        h.kept = 0
        h.lost = False
        h.remaining = 0
        h.scan = 0

    def _message_done(self, h: _Half) -> None:
        """The message in h's direction is complete (possibly with lost bytes in its body)."""
        msg, ex = h.msg, h.ex
        assert msg is not None and ex is not None
        if h.keep and not h.lost:
            msg.body = b"".join(h.parts)
        h.parts = []
        h.msg = h.ex = None
        h.state = _START
        upper = self.upper
        if isinstance(msg, HttpRequest):
            ex.request_done = True
            if ex.pauses and not ex.final_seen:
                # RFC 9110 section 7.8: what follows may already be the new protocol
                h.state = _PAUSED
                self._paused = ex
            if upper is not None:
                upper.http_request(self.session_id, msg)
            if ex.response_done:
                self._emit(ex)
        else:
            ex.response_done = True
            if upper is not None:
                upper.http_response(self.session_id, ex.request, msg)
            if ex.request_done:
                self._emit(ex)

    def _drop(self, h: _Half, tag: str | None) -> None:
        """Abandon the message in progress in h's direction; its row (if any) gets ``tag``."""
        ex = h.ex
        if ex is None and h.start is not None and h.state in (_LINE, _FIELDS):
            # only the start line is known: still worth a row
            if h.direction == C2S:
                method, target, version = h.start
                assert isinstance(target, str)
                ex = _Exchange(HttpRequest(h.msg_ts, method, target, version, {}), h.msg_ts)
                self._add_request(ex)
            else:
                version, status, reason = h.start
                assert isinstance(status, int)
                if not 100 <= status < 200 or status == 101:
                    ex = self._pair_or_orphan(h.msg_ts)
                    ex.response = HttpResponse(h.msg_ts, version, status, reason, {})
                    ex.final_seen = True
        if ex is not None:
            if tag is not None:
                ex.anomaly.append(tag)
            if h.direction == C2S:
                ex.request_done = True
                if ex.response_done:
                    self._emit(ex)
            else:
                ex.response_done = True
                self._emit(ex)
        h.msg = h.ex = None
        h.start = None
        h.parts = []
        h.lost = False
        h.state = _START

    def _bad_chunk(self, h: _Half) -> None:
        # RFC 9112 section 7.1: not chunked coding, so the message's end is unknown
        self._drop(h, "bad-chunk")
        self._lose_sync(h)

    def _too_large(self, h: _Half) -> None:
        self._drop(h, "header-too-large")
        self._lose_sync(h)
        h.state = _SKIP_HEAD  # then hunt: without its fields the body's framing is unknown

    def _garbage(self, h: _Half) -> None:
        """Not a start line: a row says so, and the direction is no longer parsed."""
        if h.direction == C2S:
            ex = _Exchange(HttpRequest(h.msg_ts, "", "", "", {}), h.msg_ts)
            ex.request_done = True
            ex.anomaly.append("bad-request-line")
            self._add_request(ex)  # a 400 from the server still pairs with it
        else:
            paired, _ = self._pair(h.msg_ts)
            ex = paired if paired is not None else _Exchange(None, h.msg_ts)
            ex.anomaly.append("bad-status-line")
            ex.response_done = True
            self._emit(ex)
        self._kill(h)

    def _kill(self, h: _Half) -> None:
        h.ignored += h.stash_bytes + len(h.buf)  # held back or partial: never parsed now
        h.state = _DEAD
        h.buf = bytearray()
        h.stash = []
        h.stash_bytes = 0
        if h.ex is not None:
            self._drop(h, None)
            h.state = _DEAD

    def _resume(self) -> None:
        """The upgrade was declined: parse the c2s bytes held back as HTTP after all."""
        self._paused = None
        c = self._halves[C2S]
        if c.state != _PAUSED:
            return
        items = c.stash
        c.stash = []
        c.stash_bytes = 0
        c.state = _START
        for ts, item in items:
            if isinstance(item, int):
                self._gap_half(c, ts, item)
            else:
                self._feed_half(c, ts, item)

    def _switch(
        self, ex: _Exchange, resp: HttpResponse, ts: int, data: bytes | bytearray, end: int
    ) -> None:
        """101 Switching Protocols (RFC 9110 section 15.2.2): HTTP ends after its fields and
        hands back what it holds of the new protocol (h11's ``trailing_data``)."""
        ex.response_done = True
        ex.request_done = True
        self._emit(ex)
        c2s, s2c = self._halves
        self._paused = None
        if self.upper is None or ex.request is None:
            # nobody parses the new protocol: count bytes only
            self._kill(c2s)
            self._kill(s2c)
            s2c.ignored += len(data) - end
            return
        trailing: Trailing = [(C2S, item_ts, item) for item_ts, item in c2s.stash]
        if c2s.buf:
            trailing.append((C2S, c2s.msg_ts, bytes(c2s.buf)))
        if end < len(data):
            trailing.append((S2C, ts, bytes(data[end:])))
        for half in self._halves:
            half.state = _HANDED
            half.buf = bytearray()
            half.stash = []
            half.stash_bytes = 0
            half.msg = half.ex = None
        self.upper.http_switched(self.session_id, ex.request, resp, trailing)

    def _emit(self, ex: _Exchange) -> None:
        if ex.emitted:
            return
        ex.emitted = True
        req, resp = ex.request, ex.response
        ts_req = req.ts if req is not None else (resp.ts if resp is not None else ex.ts0)
        upgrade = None
        if req is not None:
            upgrade = req.headers.get("upgrade")
        if upgrade is None and resp is not None:
            upgrade = resp.headers.get("upgrade")
        self.outbox.http.append(
            HttpExchange(
                session_id=self.session_id,
                ts_request=ts_req,
                ts_response=resp.ts if resp is not None else None,
                duration_ms=ms(ts_req, resp.ts) if req is not None and resp is not None else None,
                method=req.method if req is not None else "",
                target=req.target if req is not None else "",
                host=req.headers.get("host") if req is not None else None,
                status=resp.status if resp is not None else None,
                content_length=(
                    _content_length(resp.headers.get("content-length"))
                    if resp is not None else None
                ),
                body_bytes=resp.body_bytes if resp is not None else None,
                upgrade=upgrade,
                request_body_bytes=req.body_bytes if req is not None else 0,
                anomaly=";".join(dict.fromkeys(ex.anomaly)),
            )
        )
