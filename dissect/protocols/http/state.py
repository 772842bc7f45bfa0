"""What the parser holds: one :class:`Direction` per direction, one :class:`Exchange` per request being
paired with its response."""

from __future__ import annotations

from dissect.protocols.http.messages import HttpRequest, HttpResponse
from dissect.protocols.http.syntax import START


class Exchange:
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


class Direction:
    """Parser state of one direction."""

    __slots__ = (
        "direction", "state", "buf", "scan", "line_end", "msg_ts", "start", "msg", "ex",
        "remaining", "keep", "parts", "kept", "lost", "bol", "stash", "stash_bytes", "ignored",
    )

    def __init__(self, direction: int) -> None:
        self.direction = direction
        self.state = START
        self.buf = bytearray()  # unparsed bytes of a header section, chunk line or hunt tail
        self.scan = 0  # where to resume searching, relative to the start of buf
        self.line_end = 0  # offset of the start line's LF from the message start
        self.msg_ts = 0
        self.start: tuple[str, str, str] | tuple[str, int, str] | None = None
        self.msg: HttpRequest | HttpResponse | None = None
        self.ex: Exchange | None = None
        self.remaining = 0
        self.keep = False
        self.parts: list[bytes] = []
        self.kept = 0
        self.lost = False  # bytes of the current body were lost (its framing was not)
        self.bol = False  # while hunting: the first buffered byte starts a line
        self.stash: list[tuple[int, bytes | int]] = []  # c2s bytes (or gaps) while PAUSED
        self.stash_bytes = 0
        self.ignored = 0  # bytes not parsed (DEAD)
