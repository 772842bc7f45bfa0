"""One small reader per parser state, chosen from a table (after h11's ``_readers.READERS``).

A reader gets the dissector (for the message-level steps it may take: a head is complete, a
message is done, framing is lost...), the direction's :class:`~.state.Direction`, the time, the bytes
and where to start; it returns where the next reader starts and what the loop does next:
:data:`GO` (run the reader of the new state), :data:`WAIT` (keep the bytes from there until more
come) or :data:`DONE` (the direction is not HTTP's any more: stop, keep nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from dissect.protocols.http.state import Direction
from dissect.protocols.http.syntax import (
    BODY,
    CHUNK_DATA,
    CHUNK_END,
    CHUNK_SIZE,
    CHUNK_SIZE_RE,
    DEAD,
    EOF_BODY,
    FIELDS,
    HANDED,
    HUNT,
    LINE,
    MAX_CHUNK_LINE,
    MAX_HUNT_LINE,
    PAUSED,
    REQUEST_LINE,
    SKIP_HEAD,
    START,
    STATUS_LINE,
    TOKEN,
    TRAILER,
    field_text,
    find_head_end,
    parse_fields,
    strip_cr,
)
from dissect.records import C2S, S2C

GO = 0
WAIT = 1
DONE = 2

Data = bytes | bytearray


class Steps(Protocol):
    """The message-level steps a reader may take (:class:`~.dissector.HttpDissector` has them)."""

    max_header_bytes: int

    def take_body(self, h: Direction, data: Data, pos: int, take: int) -> None: ...
    def message_done(self, h: Direction) -> None: ...
    def garbage(self, h: Direction) -> None: ...
    def too_large(self, h: Direction) -> None: ...
    def bad_chunk(self, h: Direction) -> None: ...
    def drop(self, h: Direction, tag: str | None) -> None: ...
    def lose_sync(self, h: Direction) -> None: ...
    def stash(self, h: Direction, ts: int, item: bytes | int) -> None: ...
    def request_head(self, h: Direction, headers: dict[str, str], anomaly: list[str]) -> None: ...
    def response_head(self, h: Direction, ts: int, headers: dict[str, str], anomaly: list[str], data: Data,
                      end: int) -> bool: ...


Reader = Callable[[Steps, Direction, int, Data, int, int], tuple[int, int]]


# -- start lines -------------------------------------------------------------------------------------

def prefix_ok(h: Direction, head: Data) -> bool:
    """Could ``head`` still grow into a start line? Catches binary garbage early."""
    if h.direction == S2C:
        return b"HTTP/1."[: len(head)] == head[:7]
    sp = head.find(b" ")
    if sp < 0:
        return len(head) <= 64 and (not head or TOKEN.fullmatch(head) is not None)
    return sp > 0 and TOKEN.fullmatch(head[:sp]) is not None


def parse_start(h: Direction, line: Data) -> tuple[str, str, str] | tuple[str, int, str] | None:
    """A request-line (RFC 9112 section 3) or status-line (section 4), as h's direction expects."""
    if h.direction == C2S:
        m = REQUEST_LINE.fullmatch(line)
        if m is None:
            return None
        return (m[1].decode("ascii"), field_text(m[2]), m[3].decode("ascii"))
    m = STATUS_LINE.fullmatch(line)
    if m is None:
        return None
    return (m[1].decode("ascii"), int(m[2]), field_text(m[3] or b""))


def hunt(h: Direction, data: Data, pos: int, n: int) -> int:
    """Look for a start line at a line start (resynchronisation after lost framing).

    Returns its index, or ``-(k + 1)`` where ``k`` is where the tail worth keeping begins.
    Responses start with ``HTTP/1.`` (RFC 9112 section 4); a request-line is recognised by
    its ``SP HTTP/1.x`` end and checked whole (section 3).
    """
    if h.direction == S2C:
        i = data.find(b"HTTP/1.", pos + h.scan)
        while i >= 0:
            if (i > pos and data[i - 1] == 10) or (i == pos and h.bol):
                nl = data.find(b"\n", i, i + MAX_HUNT_LINE)
                if nl < 0 and n - i < MAX_HUNT_LINE:
                    h.scan = 0
                    h.bol = True
                    return -(i + 1)  # a candidate: wait for its line end
                if nl >= 0 and STATUS_LINE.fullmatch(strip_cr(data[i:nl])):
                    return i
            i = data.find(b"HTTP/1.", i + 1)
        keep_max = 7
    else:
        j = data.find(b" HTTP/1.", pos + h.scan)
        while j >= 0:
            r = data.rfind(b"\n", pos, j)
            ls = r + 1 if r >= 0 else (pos if h.bol else -1)
            if ls >= 0 and j - ls < MAX_HUNT_LINE:
                nl = data.find(b"\n", j, ls + MAX_HUNT_LINE)
                if nl < 0 and n - ls < MAX_HUNT_LINE:
                    h.scan = j - ls
                    h.bol = True
                    return -(ls + 1)
                if nl >= 0 and REQUEST_LINE.fullmatch(strip_cr(data[ls:nl])):
                    return ls
            j = data.find(b" HTTP/1.", j + 1)
        keep_max = MAX_HUNT_LINE
    # nothing yet: keep the last partial line if it may still become a start line
    r = data.rfind(b"\n", pos, n)
    k = r + 1 if r >= 0 else (pos if h.bol else n)
    if n - k > keep_max:
        k = n
    h.bol = k < n or r == n - 1 or (n == pos and h.bol)
    h.scan = max(0, n - k - 8)
    return -(k + 1)


# -- the readers ---------------------------------------------------------------------------------------

def read_body(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    """Content-Length body or chunk-data: count (and keep, if asked) up to the length."""
    st = h.state
    take = min(h.remaining, n - pos)
    d.take_body(h, data, pos, take)
    pos += take
    h.remaining -= take
    if h.remaining == 0:
        if st == BODY:
            d.message_done(h)
        else:
            h.state = CHUNK_END
    return pos, GO


def read_start(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    # RFC 9112 section 2.2: ignore empty lines before a start line
    while pos < n and data[pos] in (10, 13):
        pos += 1
    if pos < n:
        h.msg_ts = ts
        h.state = LINE
        h.scan = 0
    return pos, GO


def read_line(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    """The start line: whole, or judged as it grows (garbage, too long)."""
    nl = data.find(b"\n", pos + h.scan)
    if nl < 0 or nl - pos > d.max_header_bytes:
        # (an overlong line is judged the same whether or not its end has come)
        if not prefix_ok(h, data[pos : pos + 72]):
            d.garbage(h)
        elif n - pos > d.max_header_bytes:
            sp = data.find(b" ", pos, pos + 72)
            if h.direction == C2S and sp > pos:
                # prefix_ok vouched for the method: the row can at least name it
                h.start = (data[pos:sp].decode("ascii"), "", "")
            d.too_large(h)
            pos = n - 3 if nl < 0 else nl - 1
        else:
            h.scan = n - pos
            return pos, WAIT
        return pos, GO
    h.start = parse_start(h, strip_cr(data[pos:nl]))
    if h.start is None:
        d.garbage(h)
        return pos, GO
    h.line_end = nl - pos
    h.scan = max(0, nl - pos - 1)  # the line's own CRLF may begin the empty line
    h.state = FIELDS
    return pos, GO


def read_fields(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    """The field section up to its empty line (RFC 9112 sections 2.1, 5)."""
    end = find_head_end(data, pos + h.scan, n)
    if end < 0:
        if n - pos > d.max_header_bytes:
            d.too_large(h)
            return n - 3, GO
        h.scan = max(0, n - pos - 3)
        return pos, WAIT
    if end - pos > d.max_header_bytes:
        # the same verdict however the bytes were segmented
        d.too_large(h)
        h.state = HUNT
        return end, GO
    anomaly: list[str] = []
    headers = parse_fields(data[pos + h.line_end + 1 : end], anomaly)
    if h.direction == C2S:
        d.request_head(h, headers, anomaly)
    elif d.response_head(h, ts, headers, anomaly, data, end):
        return end, DONE  # switched protocols: HTTP handed back what follows
    return end, GO


def read_chunk_size(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    """A chunk-size line (RFC 9112 section 7.1)."""
    nl = data.find(b"\n", pos + h.scan)
    if nl < 0:
        if n - pos > MAX_CHUNK_LINE:
            d.bad_chunk(h)
            return pos, GO
        h.scan = n - pos
        return pos, WAIT
    if nl - pos > MAX_CHUNK_LINE:
        d.bad_chunk(h)
        return pos, GO
    line = strip_cr(data[pos:nl])
    semi = line.find(b";")  # chunk extensions (RFC 9112 section 7.1.1) are ignored
    size = (line if semi < 0 else line[:semi]).strip(b" \t")
    if CHUNK_SIZE_RE.fullmatch(size) is None:
        d.bad_chunk(h)
        return pos, GO
    h.remaining = int(size, 16)
    h.scan = 0
    h.state = CHUNK_DATA if h.remaining else TRAILER
    return nl + 1, GO


def read_chunk_end(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    """The CRLF after chunk-data."""
    b0 = data[pos]
    if b0 == 10:
        pos += 1
    elif b0 == 13 and pos + 1 < n and data[pos + 1] == 10:
        pos += 2
    elif b0 == 13 and pos + 1 == n:
        return pos, WAIT
    else:
        d.bad_chunk(h)
        return pos, GO
    h.state = CHUNK_SIZE
    h.scan = 0
    return pos, GO


def read_trailer(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    """The trailer section after the last chunk (RFC 9112 section 7.1.2)."""
    if h.scan == 0 and data[pos] in (10, 13):
        # no trailer fields: the CRLF ending the chunked body follows last-chunk
        if data[pos] == 10:
            pos += 1
        elif pos + 1 == n:
            return pos, WAIT
        elif data[pos + 1] == 10:
            pos += 2
        else:
            d.bad_chunk(h)
            return pos, GO
        d.message_done(h)
        return pos, GO
    end = find_head_end(data, pos + h.scan, n)
    if end < 0:
        if n - pos > d.max_header_bytes:
            d.drop(h, "header-too-large")
            d.lose_sync(h)
            h.state = SKIP_HEAD
            return n - 3, GO
        h.scan = max(1, n - pos - 3)
        return pos, WAIT
    if end - pos > d.max_header_bytes:
        d.drop(h, "header-too-large")
        d.lose_sync(h)
        return end, GO
    # trailer fields are not merged into the header section
    d.message_done(h)
    return end, GO


def read_eof_body(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    """A response body that the close ends (RFC 9112 section 6.3 rule 8)."""
    d.take_body(h, data, pos, n - pos)
    return n, GO


def read_skip_head(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    """An oversized header section: skip to its end, then hunt."""
    end = find_head_end(data, pos, n)
    if end < 0:
        return max(pos, n - 3), WAIT
    h.state = HUNT
    h.bol = True
    h.scan = 0
    return end, GO


def read_hunt(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    found = hunt(h, data, pos, n)
    if found < 0:
        return -found - 1, WAIT
    h.state = START
    return found, GO


def read_paused(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    """c2s after a request asking to switch protocols: held until the response says."""
    d.stash(h, ts, bytes(data[pos:]))
    return n, GO


def read_dead(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    """Not HTTP (any more): counted, not parsed."""
    h.ignored += n - pos
    return n, GO


def read_handed(d: Steps, h: Direction, ts: int, data: Data, pos: int, n: int) -> tuple[int, int]:
    return pos, DONE


READERS: list[Reader] = [read_body] * (HANDED + 1)
READERS[START] = read_start
READERS[LINE] = read_line
READERS[FIELDS] = read_fields
READERS[BODY] = read_body
READERS[CHUNK_SIZE] = read_chunk_size
READERS[CHUNK_DATA] = read_body
READERS[CHUNK_END] = read_chunk_end
READERS[TRAILER] = read_trailer
READERS[EOF_BODY] = read_eof_body
READERS[SKIP_HEAD] = read_skip_head
READERS[HUNT] = read_hunt
READERS[PAUSED] = read_paused
READERS[DEAD] = read_dead
READERS[HANDED] = read_handed
