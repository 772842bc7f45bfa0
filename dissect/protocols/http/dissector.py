"""The HTTP/1.x dissector of one TCP connection: both directions parsed by the readers of
:mod:`.readers`, responses paired with requests (FIFO, RFC 9112 section 9.3.2), one ``http`` row
per exchange, and at a 101 the switch: HTTP stops and hands back what it holds of the new protocol.
"""

from __future__ import annotations

from collections import deque

from dissect.protocols.http.messages import HttpRequest, HttpResponse, HttpUpper, Trailing
from dissect.protocols.http.readers import DONE, READERS, parse_start
from dissect.protocols.http.state import Direction, Exchange
from dissect.protocols.http.syntax import (
    ANOMALIES,
    BODY,
    CHUNK_DATA,
    CHUNK_END,
    CHUNK_SIZE,
    DEAD,
    EOF_BODY,
    FIELDS,
    HANDED,
    HUNT,
    LINE,
    MAX_PENDING,
    PAUSED,
    SKIP_HEAD,
    START,
    TRAILER,
    content_length,
    strip_cr,
)
from dissect.records import C2S, S2C, HttpExchange, Outbox, ms

__all__ = ["ANOMALIES", "HttpDissector"]  # ANOMALIES: the tags written here (syntax.ANOMALIES)


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
        self._halves = (Direction(C2S), Direction(S2C))
        # Requests waiting for their response, oldest first; None marks where c2s framing was
        # lost, so an unknown number of requests may be missing there.
        self._queue: deque[Exchange | None] = deque()
        self._pipelining = False  # the client was seen to pipeline (RFC 9112 section 9.3.2)
        self._paused: Exchange | None = None

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
        if c2s.state == HANDED:
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

    def _feed_half(self, h: Direction, ts: int, data: bytes | bytearray) -> None:
        st = h.state
        if st == DEAD:
            h.ignored += len(data)
        elif st == PAUSED:
            self.stash(h, ts, bytes(data))
        elif st != HANDED:
            self._run(h, ts, data)
        else:  # after a switch the connection's owner sends the bytes elsewhere; these are not HTTP
            h.ignored += len(data)

    def stash(self, h: Direction, ts: int, item: bytes | int) -> None:
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

    def _gap_half(self, h: Direction, ts: int, nbytes: int) -> None:
        st = h.state
        if st in (DEAD, HANDED):
            return
        if st == PAUSED:
            self.stash(h, ts, nbytes)
            return
        ex = h.ex
        if ex is not None and (
            st == EOF_BODY or (st in (BODY, CHUNK_DATA) and nbytes <= h.remaining)
        ):
            # The body's length is known (RFC 9112 section 6.3), so the hole lies inside it and
            # the framing survives: count the bytes, keep going, but the body is no longer whole.
            ex.anomaly.append("lost-bytes")
            h.lost = True
            h.parts = []
            msg = h.msg
            assert msg is not None
            msg.body_bytes += nbytes
            if st != EOF_BODY:
                h.remaining -= nbytes
                if h.remaining == 0:
                    if st == BODY:
                        self.message_done(h)
                    else:
                        h.state = CHUNK_END
            return
        self.drop(h, "lost-bytes")
        self.lose_sync(h)

    def _finish_half(self, h: Direction, ts: int) -> None:
        st = h.state
        if st == EOF_BODY:
            self.message_done(h)  # RFC 9112 section 6.3 rule 8: the close ends the body
        elif st == LINE:
            # the start line may be whole even though its line end never came
            if h.buf:
                h.start = parse_start(h, strip_cr(h.buf))
            if h.start is not None:
                self.drop(h, "truncated-headers")
        elif st == FIELDS:
            self.drop(h, "truncated-headers")
        elif st in (BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILER):
            ex = h.ex
            msg = h.msg
            if (
                ex is not None and msg is not None and h.direction == C2S
                and ex.expect_continue and ex.final_seen and msg.body_bytes == 0
            ):
                # RFC 9110 section 10.1.1: after a final response to "Expect: 100-continue" the
                # client may close instead of sending the content; nothing is missing.
                self.drop(h, None)
            else:
                self.drop(h, "truncated-body")
        h.buf = bytearray()

    def _run(self, h: Direction, ts: int, data: bytes | bytearray) -> None:
        """Parse ``data``, the next in-order bytes of h's direction, carried at ``ts``: the reader
        of each state in turn (:data:`~dissect.protocols.http.readers.READERS`)."""
        if h.buf:
            h.buf += data
            data = h.buf
            h.buf = bytearray()
        pos = 0
        n = len(data)
        readers = READERS
        while pos < n:
            pos, flow = readers[h.state](self, h, ts, data, pos, n)
            if flow:
                if flow == DONE:
                    return
                break
        if pos < n:
            # keep the unparsed tail; reuse the buffer when it is ours, to avoid copies
            if isinstance(data, bytearray):
                del data[:pos]
                h.buf = data
            else:
                h.buf = bytearray(data[pos:])

    def take_body(self, h: Direction, data: bytes | bytearray, pos: int, take: int) -> None:
        msg = h.msg
        assert msg is not None
        msg.body_bytes += take
        if h.keep and not h.lost:
            room = self.max_body_bytes - h.kept
            if room > 0:
                piece = bytes(data[pos : pos + min(take, room)])
                h.parts.append(piece)
                h.kept += len(piece)

    def _framing(self, h: Direction, headers: dict[str, str], ex: Exchange) -> int:
        """Body framing per RFC 9112 section 6.3 rules 3-8; returns a state or -1 (invalid).

        START means no body. HEAD/1xx/204/304/CONNECT (rules 1-2) are the caller's.
        """
        te = headers.get("transfer-encoding")
        cl = headers.get("content-length")
        if te is not None:
            codings = [c.strip().lower() for c in te.split(",") if c.strip()]
            if cl is not None:
                # rule 3: Transfer-Encoding wins; both present hints at smuggling (section 11.2)
                ex.anomaly.append("te-and-content-length")
            if codings and codings[-1] == "chunked":
                return CHUNK_SIZE
            if h.direction == S2C and codings:
                return EOF_BODY  # rule 3: a response's length is then the close
            ex.anomaly.append("bad-transfer-encoding")  # rule 3: a request's length is unknowable
            return -1
        if cl is not None:
            length = content_length(cl)
            if length is None:
                ex.anomaly.append("bad-content-length")  # rule 5: unrecoverable
                return -1
            h.remaining = length
            return BODY if length else START
        return START if h.direction == C2S else EOF_BODY  # rules 7 and 8

    def _add_request(self, ex: Exchange) -> None:
        q = self._queue
        if q and q[-1] is not None and not q[-1].final_seen:
            q[-1].overtaken = True
        q.append(ex)
        if len(q) > MAX_PENDING:
            # bounded memory: the oldest request is given up as unanswered
            old = q.popleft()
            if old is not None:
                old.anomaly.append("no-response")
                self._emit(old)

    def lose_sync(self, h: Direction) -> None:
        """Framing of h's direction is lost: resynchronise, and remember what may be missing."""
        h.state = HUNT
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

    def _pair(self, resp_ts: int) -> tuple[Exchange | None, bool]:
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

    def _pair_or_orphan(self, ts: int) -> Exchange:
        ex, lost = self._pair(ts)
        if ex is None:
            ex = Exchange(None, ts)
            ex.anomaly.append("response-without-request")
            if lost:
                ex.anomaly.append("lost-bytes")
        return ex

    def request_head(self, h: Direction, headers: dict[str, str], anomaly: list[str]) -> None:
        start = h.start
        assert start is not None
        method, target, version = start
        assert isinstance(target, str)
        req = HttpRequest(h.msg_ts, method, target, version, headers, frame=self.outbox.frame)
        ex = Exchange(req, h.msg_ts)
        ex.anomaly.extend(anomaly)
        ex.pauses = "upgrade" in headers or method == "CONNECT"
        ex.expect_continue = "100-continue" in headers.get("expect", "").lower()
        self._add_request(ex)
        ex.want = bool(self.upper.want_body(req)) if self.upper is not None else False
        self._begin_body(h, req, ex)
        self._apply_framing(h, self._framing(h, headers, ex))

    def _apply_framing(self, h: Direction, framing: int) -> None:
        """Go on after a header section as its framing says (RFC 9112 section 6.3)."""
        if framing < 0:
            # rules 3 and 5: an unusable length; a server answers 400 and closes, so do we
            self.drop(h, None)
            self._kill(h)
        elif framing == START:
            self.message_done(h)
        else:
            h.state = framing

    def response_head(
        self,
        h: Direction,
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
        resp = HttpResponse(h.msg_ts, version, status, reason, headers, frame=self.outbox.frame)
        h.start = None
        if 100 <= status < 200 and status != 101:
            # interim response (RFC 9110 section 15.2), e.g. 100 Continue: the final one follows
            h.state = START
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
            self.message_done(h)
            for half in self._halves:
                self._kill(half)
            return False
        if method == "HEAD" or status in (204, 304):
            self._apply_framing(h, START)  # rule 1: no body, whatever the fields say
        else:
            self._apply_framing(h, self._framing(h, headers, ex))
        paused = self._paused
        if paused is not None and (ex is paused or paused.emitted):
            self._resume()  # not switching: the client carries on with HTTP/1.1
        return False

    def _begin_body(self, h: Direction, msg: HttpRequest | HttpResponse, ex: Exchange) -> None:
        h.msg = msg
        h.ex = ex
        h.start = None
        h.keep = ex.want
        h.parts = []
        h.kept = 0
        h.lost = False
        h.remaining = 0
        h.scan = 0

    def message_done(self, h: Direction) -> None:
        """The message in h's direction is complete (possibly with lost bytes in its body)."""
        msg, ex = h.msg, h.ex
        assert msg is not None and ex is not None
        if h.keep and not h.lost:
            msg.body = b"".join(h.parts)
        h.parts = []
        h.msg = h.ex = None
        h.state = START
        upper = self.upper
        if isinstance(msg, HttpRequest):
            ex.request_done = True
            if ex.pauses and not ex.final_seen:
                # RFC 9110 section 7.8: what follows may already be the new protocol
                h.state = PAUSED
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

    def drop(self, h: Direction, tag: str | None) -> None:
        """Abandon the message in progress in h's direction; its row (if any) gets ``tag``."""
        ex = h.ex
        if ex is None and h.start is not None and h.state in (LINE, FIELDS):
            # only the start line is known: still worth a row
            if h.direction == C2S:
                method, target, version = h.start
                assert isinstance(target, str)
                ex = Exchange(HttpRequest(h.msg_ts, method, target, version, {}), h.msg_ts)
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
        h.state = START

    def bad_chunk(self, h: Direction) -> None:
        # RFC 9112 section 7.1: not chunked coding, so the message's end is unknown
        self.drop(h, "bad-chunk")
        self.lose_sync(h)

    def too_large(self, h: Direction) -> None:
        self.drop(h, "header-too-large")
        self.lose_sync(h)
        h.state = SKIP_HEAD  # then hunt: without its fields the body's framing is unknown

    def garbage(self, h: Direction) -> None:
        """Not a start line: a row says so, and the direction is no longer parsed."""
        if h.direction == C2S:
            ex = Exchange(HttpRequest(h.msg_ts, "", "", "", {}), h.msg_ts)
            ex.request_done = True
            ex.anomaly.append("bad-request-line")
            self._add_request(ex)  # a 400 from the server still pairs with it
        else:
            paired, _ = self._pair(h.msg_ts)
            ex = paired if paired is not None else Exchange(None, h.msg_ts)
            ex.anomaly.append("bad-status-line")
            ex.response_done = True
            self._emit(ex)
        self._kill(h)

    def _kill(self, h: Direction) -> None:
        h.ignored += h.stash_bytes + len(h.buf)  # held back or partial: never parsed now
        h.state = DEAD
        h.buf = bytearray()
        h.stash = []
        h.stash_bytes = 0
        if h.ex is not None:
            self.drop(h, None)
            h.state = DEAD

    def _resume(self) -> None:
        """The upgrade was declined: parse the c2s bytes held back as HTTP after all."""
        self._paused = None
        c = self._halves[C2S]
        if c.state != PAUSED:
            return
        items = c.stash
        c.stash = []
        c.stash_bytes = 0
        c.state = START
        for ts, item in items:
            if isinstance(item, int):
                self._gap_half(c, ts, item)
            else:
                self._feed_half(c, ts, item)

    def _switch(
        self, ex: Exchange, resp: HttpResponse, ts: int, data: bytes | bytearray, end: int
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
            half.state = HANDED
            half.buf = bytearray()
            half.stash = []
            half.stash_bytes = 0
            half.msg = half.ex = None
        self.upper.http_switched(self.session_id, ex.request, resp, trailing)

    def _emit(self, ex: Exchange) -> None:
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
        if resp is None and req is not None and self.upper is not None:
            self.upper.http_unanswered(self.session_id, req)
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
                    content_length(resp.headers.get("content-length"))
                    if resp is not None else None
                ),
                body_bytes=resp.body_bytes if resp is not None else None,
                upgrade=upgrade,
                request_body_bytes=req.body_bytes if req is not None else 0,
                anomaly=";".join(dict.fromkeys(ex.anomaly)),
                frame_request=req.frame if req is not None else None,
                frame_response=resp.frame if resp is not None else None,
            )
        )
