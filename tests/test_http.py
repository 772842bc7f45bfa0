"""HTTP/1.x dissector (dissect.protocols.http): framing per RFC 9112, pairing, upgrade hand-off, gaps,
garbage and bounds. Well-formed messages come from h11 (a real serializer); malformed ones are
written by hand."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.protocols.http import (
    HttpDissector,
    HttpRequest,
    HttpResponse,
    Trailing,
    looks_like_http_request,
)
from dissect.records import C2S, S2C, HttpExchange, Outbox
from dissect.transport.tcp import StreamDissector

SID = 7


class Upper:
    """A recording HttpUpper."""

    def __init__(self, want: bool = False, switch_to: StreamDissector | None = None) -> None:
        self.want = want
        self.switch_to = switch_to
        self.requests: list[HttpRequest] = []
        self.responses: list[tuple[HttpRequest | None, HttpResponse]] = []
        self.upgrades: list[tuple[HttpRequest, HttpResponse]] = []
        self.unanswered: list[HttpRequest] = []
        self.asked: list[str] = []

    def want_body(self, request: HttpRequest) -> bool:
        self.asked.append(request.target)
        return self.want

    def http_request(self, session_id: int, request: HttpRequest) -> None:
        assert session_id == SID
        self.requests.append(request)

    def http_response(
        self, session_id: int, request: HttpRequest | None, response: HttpResponse
    ) -> None:
        assert session_id == SID
        self.responses.append((request, response))

    def http_unanswered(self, session_id: int, request: HttpRequest) -> None:
        assert session_id == SID
        self.unanswered.append(request)

    def http_switched(
        self, session_id: int, request: HttpRequest, response: HttpResponse, trailing: Trailing
    ) -> None:
        """As the connection's owner does (TcpConnection.switch): the trailing bytes first."""
        self.upgrades.append((request, response))
        self.trailing = list(trailing)
        if self.switch_to is not None:
            for d, ts, item in trailing:
                if isinstance(item, int):
                    self.switch_to.gap(d, ts, item)
                else:
                    self.switch_to.feed(d, ts, item)


class FakeStream:
    """A recording StreamDissector."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def feed(self, direction: int, ts: int, data: bytes) -> None:
        self.calls.append(("feed", direction, ts, bytes(data)))

    def gap(self, direction: int, ts: int, nbytes: int) -> None:
        self.calls.append(("gap", direction, ts, nbytes))

    def finish(self, ts: int) -> None:
        self.calls.append(("finish", ts))

    def data(self, direction: int) -> bytes:
        return b"".join(c[3] for c in self.calls if c[0] == "feed" and c[1] == direction)


Event = tuple[str, int, int, Any]  # ("feed"|"gap", direction, ts, bytes|nbytes)


def run(
    events: Iterable[Event],
    upper: Upper | None = None,
    finish_ts: int = 10**9,
    **kw: int,
) -> tuple[list[HttpExchange], HttpDissector]:
    """Feed ``events`` as a TCP connection would: after a 101 that the upper layer switched, the
    connection's next bytes go to the new dissector, not to HTTP."""
    outbox = Outbox()
    d = HttpDissector(SID, outbox, upper, **kw)
    for kind, direction, ts, x in events:
        app: StreamDissector = d
        if upper is not None and upper.upgrades and upper.switch_to is not None:
            app = upper.switch_to
        if kind == "feed":
            app.feed(direction, ts, x)
        else:
            app.gap(direction, ts, x)
    if upper is not None and upper.upgrades and upper.switch_to is not None:
        upper.switch_to.finish(finish_ts)
    else:
        d.finish(finish_ts)
    return outbox.http, d


def feeds(direction: int, data: bytes, ts: int, sizes: Sequence[int] | None = None) -> list[Event]:
    """``data`` as segments of the given sizes (one segment when None), all at ``ts``."""
    if sizes is None:
        return [("feed", direction, ts, data)]
    out: list[Event] = []
    pos = 0
    i = 0
    while pos < len(data):
        size = max(1, sizes[i % len(sizes)]) if sizes else 1
        out.append(("feed", direction, ts, data[pos : pos + size]))
        pos += size
        i += 1
    return out


def c2s(data: bytes, ts: int = 1000) -> Event:
    return ("feed", C2S, ts, data)


def s2c(data: bytes, ts: int = 2000) -> Event:
    return ("feed", S2C, ts, data)


def drain(conn: h11.Connection) -> list[Any]:
    out: list[Any] = []
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA or ev is h11.PAUSED:
            return out
        out.append(ev)


def h11_conversation(
    exchanges: Sequence[tuple[Sequence[Any], Sequence[Any]]],
) -> list[tuple[bytes, bytes]]:
    """Bytes of each (client events, server events) exchange on one keep-alive connection."""
    client = h11.Connection(h11.CLIENT)
    server = h11.Connection(h11.SERVER)
    out = []
    for req_events, resp_events in exchanges:
        c = b"".join(client.send(e) or b"" for e in req_events)
        server.receive_data(c)
        drain(server)
        s = b"".join(server.send(e) or b"" for e in resp_events)
        client.receive_data(s)
        drain(client)
        out.append((c, s))
        if client.our_state is h11.DONE and server.our_state is h11.DONE:
            client.start_next_cycle()
            server.start_next_cycle()
    return out


def get(target: str, *headers: tuple[str, str], method: str = "GET") -> h11.Request:
    return h11.Request(method=method, target=target, headers=[("Host", "example.com"), *headers])


def ok(body: bytes = b"", *headers: tuple[str, str], status: int = 200,
       length: bool = True) -> list[Any]:
    hs = list(headers)
    if length:
        hs.append(("Content-Length", str(len(body))))
    events: list[Any] = [h11.Response(status_code=status, headers=hs)]
    if body:
        events.append(h11.Data(data=body))
    events.append(h11.EndOfMessage())
    return events


def simple(rows: list[HttpExchange]) -> list[tuple[Any, ...]]:
    return [(r.method, r.target, r.status, r.body_bytes, r.request_body_bytes, r.anomaly)
            for r in rows]


# -- well-formed traffic ------------------------------------------------------------------------

def keepalive_bytes() -> list[tuple[bytes, bytes]]:
    return h11_conversation([
        ([get("/a"), h11.EndOfMessage()], ok(b"hello")),
        ([get("/form", ("Content-Length", "7"), method="POST"), h11.Data(data=b"a=1&b=2"),
          h11.EndOfMessage()], ok(b"", status=201)),
        # no Content-Length: h11 chunks the response
        ([get("/stream"), h11.EndOfMessage()],
         [h11.Response(status_code=200, headers=[]), h11.Data(data=b"x" * 10),
          h11.Data(data=b"y" * 300), h11.EndOfMessage(headers=[("X-Sum", "1")])]),
        ([get("/big", ("Transfer-Encoding", "chunked"), method="PUT"),
          h11.Data(data=b"0123456789"), h11.Data(data=b"abc"), h11.EndOfMessage()],
         ok(b"done")),
    ])


def test_keep_alive_several_exchanges() -> None:
    conv = keepalive_bytes()
    events: list[Event] = []
    for i, (c, s) in enumerate(conv):
        events += [c2s(c, 1_000_000 * (2 * i)), s2c(s, 1_000_000 * (2 * i + 1))]
    upper = Upper()
    rows, _ = run(events, upper)
    assert simple(rows) == [
        ("GET", "/a", 200, 5, 0, ""),
        ("POST", "/form", 201, 0, 7, ""),
        ("GET", "/stream", 200, 310, 0, ""),
        ("PUT", "/big", 200, 4, 13, ""),
    ]
    r = rows[0]
    assert (r.session_id, r.ts_request, r.ts_response, r.duration_ms) == (SID, 0, 1_000_000, 1.0)
    assert r.host == "example.com" and r.content_length == 5 and r.upgrade is None
    assert rows[2].content_length is None  # chunked: no Content-Length header
    assert [q.target for q in upper.requests] == ["/a", "/form", "/stream", "/big"]
    assert [resp.status for _, resp in upper.responses] == [200, 201, 200, 200]
    assert all(q.body is None for q in upper.requests)  # want_body was False


def test_pipelining_fifo() -> None:
    conv = keepalive_bytes()
    # every request before any response (RFC 9112 section 9.3.2)
    events = [c2s(b"".join(c for c, _ in conv), 5), s2c(b"".join(s for _, s in conv), 9)]
    rows, _ = run(events)
    assert [(r.target, r.status, r.body_bytes) for r in rows] == [
        ("/a", 200, 5), ("/form", 201, 0), ("/stream", 200, 310), ("/big", 200, 4)]
    assert all(r.anomaly == "" for r in rows)


def chunky_stream() -> tuple[bytes, bytes]:
    """Chunked bodies with extensions and trailers, both directions, plus a HEAD and a 304."""
    conv = h11_conversation([
        ([get("/up", ("Transfer-Encoding", "chunked"), method="POST"), h11.Data(data=b"abc"),
          h11.Data(data=b"\r\n\r\n0\r\n"), h11.EndOfMessage(headers=[("Digest", "x")])],
         [h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")]),
          h11.Data(data=b"HTTP/1.1 200 OK\r\n"), h11.Data(data=bytes(range(256))),
          h11.EndOfMessage(headers=[("Server-Timing", "a;dur=1"), ("X-T", "2")])]),
        ([get("/h", method="HEAD"), h11.EndOfMessage()], ok(b"", ("Content-Length", "99"),
                                                         length=False)),
        ([get("/c", ("If-None-Match", '"e"')), h11.EndOfMessage()],
         [h11.Response(status_code=304, headers=[("ETag", '"e"')]), h11.EndOfMessage()]),
    ])
    c = b"".join(x for x, _ in conv)
    s = b"".join(y for _, y in conv)
    # hand-written: chunk extensions (RFC 9112 section 7.1.1), upper-case hex, bare-LF chunk lines
    c += (b"POST /ext HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"A;name=value;q=\"quoted;\"\r\n0123456789\r\n1 ; x\r\nZ\r\n0;last\r\nT: 1\r\n\r\n")
    s += (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
          b"1F\r\n" + b"q" * 31 + b"\r\n0\n\n")
    return c, s


def test_chunked_bodies_and_trailers() -> None:
    c, s = chunky_stream()
    upper = Upper(want=True)
    rows, _ = run([c2s(c), s2c(s)], upper)
    assert simple(rows) == [
        ("POST", "/up", 200, 17 + 256, 10, ""),
        ("HEAD", "/h", 200, 0, 0, ""),
        ("GET", "/c", 304, 0, 0, ""),
        ("POST", "/ext", 200, 31, 11, ""),
    ]
    assert rows[1].content_length == 99
    assert upper.requests[0].body == b"abc\r\n\r\n0\r\n"
    assert upper.responses[0][1].body == b"HTTP/1.1 200 OK\r\n" + bytes(range(256))
    assert upper.requests[3].body == b"0123456789Z"


def rows_and_bodies(events: list[Event]) -> tuple[list[HttpExchange], list[Any]]:
    upper = Upper(want=True)
    rows, _ = run(events, upper)
    bodies = [q.body for q in upper.requests] + [r.body for _, r in upper.responses]
    return rows, bodies


def test_chunked_split_at_every_byte() -> None:
    c, s = chunky_stream()
    whole = rows_and_bodies([c2s(c), s2c(s)])
    ones = rows_and_bodies(feeds(C2S, c, 1000, [1]) + feeds(S2C, s, 2000, [1]))
    assert ones == whole
    # and every single split point of each direction
    for cut in range(1, len(s)):
        assert rows_and_bodies([c2s(c), s2c(s[:cut]), s2c(s[cut:])]) == whole, cut
    for cut in range(1, len(c)):
        assert rows_and_bodies([c2s(c[:cut]), c2s(c[cut:]), s2c(s)]) == whole, cut


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 64), min_size=1, max_size=20),
       st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_random_splits_give_identical_rows(cs: list[int], ss: list[int]) -> None:
    c, s = chunky_stream()
    ka = keepalive_bytes()
    c += b"".join(x for x, _ in ka)
    s += b"".join(y for _, y in ka)
    assert rows_and_bodies(feeds(C2S, c, 1000, cs) + feeds(S2C, s, 2000, ss)) == \
        rows_and_bodies([c2s(c), s2c(s)])


def oversized_stream() -> tuple[bytes, bytes]:
    """Header sections, a request-line and a trailer over a 64-byte limit, between good ones."""
    c = (b"GET /1 HTTP/1.1\r\n\r\n"
         b"GET /2 HTTP/1.1\r\nX: " + b"a" * 80 + b"\r\n\r\n"
         b"GET /" + b"b" * 80 + b" HTTP/1.1\r\n\r\n"
         b"GET /4 HTTP/1.1\r\n\r\n"
         b"GET /5 HTTP/1.1\r\n\r\n")
    s = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
         b"HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\n\r\n"
         b"HTTP/1.1 414 URI Too Long\r\nX: " + b"c" * 80 + b"\r\n\r\nbody\r\n"
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nT: "
         + b"t" * 80 + b"\r\n\r\n"
         b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    return c, s


def test_oversized_headers_rows() -> None:
    c, s = oversized_stream()
    rows, _ = run([c2s(c), s2c(s)], max_header_bytes=64)
    assert [(r.method, r.target, r.status, r.anomaly) for r in rows] == [
        ("GET", "/1", 200, ""), ("GET", "/2", 431, "header-too-large"),
        ("GET", "", 414, "header-too-large"),
        ("GET", "/4", 200, "header-too-large"), ("GET", "/5", 200, "")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 100), min_size=1, max_size=12),
       st.lists(st.integers(1, 100), min_size=1, max_size=12))
def test_oversized_headers_any_split(cs: list[int], ss: list[int]) -> None:
    c, s = oversized_stream()
    whole, _ = run([c2s(c), s2c(s)], max_header_bytes=64)
    split, _ = run(feeds(C2S, c, 1000, cs) + feeds(S2C, s, 2000, ss), max_header_bytes=64)
    assert split == whole


def test_timestamps_follow_the_first_byte() -> None:
    req = b"GET /t HTTP/1.1\r\nHost: h\r\n\r\n"
    resp = b"HTTP/1.1 204 No Content\r\n\r\n"
    # leading empty lines are skipped (RFC 9112 section 2.2): the request starts at ts 20
    rows, _ = run([c2s(b"\r\n", 10), c2s(req[:3], 20), c2s(req[3:], 30),
                   s2c(resp[:1], 5_000_020), s2c(resp[1:], 9_000_000)])
    assert (rows[0].ts_request, rows[0].ts_response, rows[0].duration_ms) == (20, 5_000_020, 5.0)


def test_head_204_304_have_no_body() -> None:
    conv = h11_conversation([
        ([get("/h", method="HEAD"), h11.EndOfMessage()], ok(b"", ("Content-Length", "1000"),
                                                         length=False)),
        ([get("/n", method="DELETE"), h11.EndOfMessage()],
         [h11.Response(status_code=204, headers=[]), h11.EndOfMessage()]),
        ([get("/m"), h11.EndOfMessage()],
         [h11.Response(status_code=304, headers=[]), h11.EndOfMessage()]),
        ([get("/after"), h11.EndOfMessage()], ok(b"xyz")),
    ])
    rows, _ = run([c2s(b"".join(c for c, _ in conv)), s2c(b"".join(s for _, s in conv))])
    assert [(r.method, r.status, r.content_length, r.body_bytes, r.anomaly) for r in rows] == [
        ("HEAD", 200, 1000, 0, ""), ("DELETE", 204, None, 0, ""), ("GET", 304, None, 0, ""),
        ("GET", 200, 3, 3, "")]


def test_interim_responses_are_not_paired() -> None:
    req = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
    resp = (b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    upper = Upper()
    rows, _ = run([c2s(req * 2), s2c(resp * 2)], upper)
    assert [(r.status, r.body_bytes, r.anomaly) for r in rows] == [(200, 2, ""), (200, 2, "")]
    assert [resp.status for _, resp in upper.responses] == [200, 200]


def test_100_continue() -> None:
    client = h11.Connection(h11.CLIENT)
    server = h11.Connection(h11.SERVER)
    head = client.send(get("/up", ("Content-Length", "5"), ("Expect", "100-continue"),
                           method="PUT"))
    server.receive_data(head)
    drain(server)
    cont = server.send(h11.InformationalResponse(status_code=100, headers=[]))
    body = client.send(h11.Data(data=b"12345")) + client.send(h11.EndOfMessage())
    server.receive_data(body)
    drain(server)
    final = b"".join(server.send(e) or b"" for e in ok(b"stored", status=201))
    upper = Upper(want=True)
    rows, _ = run([c2s(head, 1), s2c(cont, 2), c2s(body, 3), s2c(final, 4)], upper)
    assert simple(rows) == [("PUT", "/up", 201, 6, 5, "")]
    assert rows[0].ts_response == 4
    assert upper.requests[0].body == b"12345" and upper.responses[0][1].body == b"stored"


def test_100_continue_refused_then_closed() -> None:
    # RFC 9110 section 10.1.1: the client may close instead of sending the content
    head = b"PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    refused = b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"
    rows, _ = run([c2s(head), s2c(refused)])
    assert simple(rows) == [("PUT", "/up", 417, 0, 0, "")]
    # without the expectation, a body cut short is truncated
    rows, _ = run([c2s(head.replace(b"100-continue", b"nothing")), s2c(refused)])
    assert simple(rows) == [("PUT", "/up", 417, 0, 0, "truncated-body")]


def test_http10_read_until_close() -> None:
    req = b"GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n"
    server = h11.Connection(h11.SERVER)
    server.receive_data(req)
    drain(server)
    resp = b"".join(server.send(e) or b"" for e in
                    [h11.Response(status_code=200, headers=[]), h11.Data(data=b"a" * 1000),
                     h11.EndOfMessage()])
    assert b"Content-Length" not in resp and b"chunked" not in resp
    upper = Upper(want=True)
    rows, _ = run([c2s(req, 1)] + feeds(S2C, resp, 2, [7]), upper, finish_ts=99)
    assert simple(rows) == [("GET", "/old", 200, 1000, 0, "")]
    assert rows[0].host is None  # HTTP/1.0 without Host
    assert upper.responses[0][1].body == b"a" * 1000
    assert upper.responses[0][1].version == "HTTP/1.1"
    assert upper.requests[0].version == "HTTP/1.0"


def test_non_chunked_transfer_coding_reads_until_close() -> None:
    # RFC 9112 section 6.3 rule 3: a response whose final coding is not chunked ends at the close
    rows, _ = run([c2s(b"GET / HTTP/1.1\r\n\r\n"),
                   s2c(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" + b"z" * 40)])
    assert simple(rows) == [("GET", "/", 200, 40, 0, "")]


def test_want_body_true_false_and_bound() -> None:
    conv = h11_conversation([
        ([get("/p", ("Content-Length", "4"), method="POST"), h11.Data(data=b"data"),
          h11.EndOfMessage()], ok(b"0123456789")),
    ])
    (c, s), = conv
    off = Upper(want=False)
    run([c2s(c), s2c(s)], off)
    assert off.requests[0].body is None and off.responses[0][1].body is None
    assert off.requests[0].body_bytes == 4 and off.responses[0][1].body_bytes == 10
    assert off.asked == ["/p"]
    on = Upper(want=True)
    run([c2s(c), s2c(s)], on)
    assert on.requests[0].body == b"data" and on.responses[0][1].body == b"0123456789"
    small = Upper(want=True)
    run(feeds(C2S, c, 1, [3]) + feeds(S2C, s, 2, [3]), small, max_body_bytes=6)
    assert small.requests[0].body == b"data" and small.responses[0][1].body == b"012345"
    assert small.responses[0][1].body_bytes == 10


def test_headers_lowercased_joined_folded_bare_lf() -> None:
    req = (b"\r\nGET /q?a=%C3%A9 HTTP/1.1\nHost: h\nAccept: a\nX-Long: one\n  two\n"
           b"ACCEPT: b\nSet-Cookie: \xc3\xa9\n\n")
    upper = Upper()
    rows, _ = run([c2s(req), s2c(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")], upper)
    q = upper.requests[0]
    assert q.headers == {"host": "h", "accept": "a, b", "x-long": "one two", "set-cookie": "é"}
    assert simple(rows) == [("GET", "/q?a=%C3%A9", 200, 0, 0, "")]
    assert upper.responses[0][1].reason == ""


# -- protocol switches ----------------------------------------------------------------------------

WS_REQ = (b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
WS_101 = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
WS_FRAME_S = b"\x81\x05hello"
WS_FRAME_C = b"\x81\x85\x00\x00\x00\x00hello"


def test_101_hands_both_directions_over() -> None:
    fake = FakeStream()
    upper = Upper(switch_to=fake)
    events = [c2s(WS_REQ + WS_FRAME_C[:3], 1), c2s(WS_FRAME_C[3:], 2),
              s2c(WS_101 + WS_FRAME_S, 3), c2s(b"GET / HTTP/1.1\r\n\r\n", 4),
              ("gap", S2C, 5, 10), s2c(b"\x88\x00", 6)]
    rows, d = run(events, upper, finish_ts=7)
    assert [(r.method, r.target, r.status, r.upgrade, r.anomaly) for r in rows] == [
        ("GET", "/chat", 101, "websocket", "")]
    assert upper.upgrades[0][1].status == 101 and upper.responses == []
    # HTTP handed back what it held of the new protocol, in order (h11's trailing_data)
    assert upper.trailing == [(C2S, 1, WS_FRAME_C[:3]), (C2S, 2, WS_FRAME_C[3:]), (S2C, 3, WS_FRAME_S)]
    assert fake.calls == [
        ("feed", C2S, 1, WS_FRAME_C[:3]), ("feed", C2S, 2, WS_FRAME_C[3:]),
        ("feed", S2C, 3, WS_FRAME_S), ("feed", C2S, 4, b"GET / HTTP/1.1\r\n\r\n"),
        ("gap", S2C, 5, 10), ("feed", S2C, 6, b"\x88\x00"), ("finish", 7)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=10))
def test_101_handoff_any_split(sizes: list[int]) -> None:
    fake = FakeStream()
    events = feeds(C2S, WS_REQ + WS_FRAME_C, 1, sizes) + feeds(S2C, WS_101 + WS_FRAME_S, 2, sizes)
    rows, _ = run(events, Upper(switch_to=fake))
    assert [r.status for r in rows] == [101]
    assert fake.data(C2S) == WS_FRAME_C and fake.data(S2C) == WS_FRAME_S


def test_101_without_dissector_stops_parsing() -> None:
    later = b"GET /x HTTP/1.1\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\n\r\n"
    events = [c2s(WS_REQ + later), s2c(WS_101 + ok), c2s(later)]
    # no upper layer: HTTP stops parsing and counts what follows
    rows, d = run(events, None)
    assert [(r.status, r.anomaly) for r in rows] == [(101, "")]
    assert d.ignored_bytes == (2 * len(later), len(ok))
    # an upper layer that starts nothing: HTTP handed the bytes back, and parses nothing after
    upper = Upper(switch_to=None)
    rows, d = run(events, upper)
    assert [(r.status, r.anomaly) for r in rows] == [(101, "")]
    assert upper.trailing == [(C2S, 1000, later), (S2C, 2000, ok)]
    assert d.ignored_bytes == (len(later), 0)


def test_declined_upgrade_resumes_http() -> None:
    # RFC 9110 section 7.8: a server may ignore Upgrade; the client goes on with HTTP/1.1, and the
    # bytes held back while the answer was pending are parsed as HTTP after all
    nxt = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
    upper = Upper(switch_to=FakeStream())
    rows, _ = run([c2s(WS_REQ + nxt[:10]), c2s(nxt[10:]),
                   s2c(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * 2)], upper)
    assert [(r.target, r.status, r.upgrade, r.anomaly) for r in rows] == [
        ("/chat", 200, "websocket", ""), ("/next", 200, None, "")]
    assert upper.upgrades == []


def test_connect_tunnel() -> None:
    req = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    tls = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    rows, d = run([c2s(req + tls), s2c(b"HTTP/1.1 200 Connection Established\r\n\r\n" + tls),
                   c2s(tls)])
    assert simple(rows) == [("CONNECT", "example.com:443", 200, 0, 0, "")]
    assert d.ignored_bytes == (2 * len(tls), len(tls))


# -- gaps ---------------------------------------------------------------------------------------

def exchange(target: str, body: bytes = b"xy") -> tuple[bytes, bytes]:
    (c, s), = h11_conversation([([get(target), h11.EndOfMessage()], ok(body))])
    return c, s


def test_gap_inside_content_length_body_keeps_framing() -> None:
    c1, s1 = exchange("/1", b"a" * 100)
    c2, s2 = exchange("/2")
    head = s1[: -100]
    upper = Upper(want=True)
    rows, _ = run([c2s(c1 + c2, 1), s2c(head + b"a" * 30, 2), ("gap", S2C, 3, 50),
                   s2c(b"a" * 20 + s2, 4)], upper)
    assert [(r.target, r.status, r.body_bytes, r.anomaly) for r in rows] == [
        ("/1", 200, 100, "lost-bytes"), ("/2", 200, 2, "")]
    assert upper.responses[0][1].body is None  # not whole any more
    assert upper.responses[1][1].body == b"xy"


def test_gap_in_request_headers_resyncs() -> None:
    c1, s1 = exchange("/1")
    c2, s2 = exchange("/2")
    c3, s3 = exchange("/3")
    # the middle of request 2 is lost; its response arrives before request 3 is sent
    rows, _ = run([c2s(c1, 1), s2c(s1, 2), c2s(c2[:5], 3), ("gap", C2S, 4, 10),
                   c2s(c2[15:], 4), s2c(s2, 5), c2s(c3, 6), s2c(s3, 7)])
    assert [(r.target, r.status, r.anomaly) for r in rows] == [
        ("/1", 200, ""), ("", 200, "response-without-request;lost-bytes"), ("/3", 200, "")]


def test_gap_after_request_line_keeps_what_is_known() -> None:
    c1, s1 = exchange("/1")
    c2, s2 = exchange("/2")
    cut = c2.index(b"\r\n") + 4
    rows, _ = run([c2s(c1 + c2[:cut], 1), ("gap", C2S, 2, len(c2) - cut), s2c(s1 + s2, 3)])
    assert [(r.target, r.status, r.anomaly) for r in rows] == [
        ("/1", 200, ""), ("/2", 200, "lost-bytes")]


def test_c2s_gap_that_lost_nothing_whole() -> None:
    # the gap eats the tail of a body; the next request is found and its response paired with it
    body_req = b"POST /1 HTTP/1.1\r\nContent-Length: 100\r\n\r\n"
    c2, s2 = exchange("/2")
    rows, _ = run([c2s(body_req + b"b" * 10, 1), ("gap", C2S, 2, 200), c2s(b"junk\r\n" + c2, 3),
                   s2c(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n", 4), s2c(s2, 5)])
    assert [(r.target, r.status, r.request_body_bytes, r.anomaly) for r in rows] == [
        ("/1", 413, 10, "lost-bytes"), ("/2", 200, 0, "")]


def test_gap_crossing_chunks_drops_response_and_resyncs() -> None:
    c1 = b"GET /1 HTTP/1.1\r\n\r\n"
    c2, s2 = exchange("/2")
    s1 = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    # while resynchronising, "HTTP/1." counts only at a line start
    rows, _ = run([c2s(c1 + c2, 1), s2c(s1 + b"5\r\nwo", 2), ("gap", S2C, 3, 40),
                   s2c(b"ld\r\n0\r\n\r\nxx", 4), s2c(b"HTTP/1.1 500 Not a line start\r\n", 4),
                   s2c(b"\n" + s2, 4)])
    assert [(r.target, r.status, r.body_bytes, r.anomaly) for r in rows] == [
        ("/1", 200, 7, "lost-bytes"), ("/2", 200, 2, "")]


def test_s2c_gap_losing_a_whole_response() -> None:
    c1, s1 = exchange("/1")
    c2, s2 = exchange("/2")
    c3, s3 = exchange("/3")
    # non-pipelining client: request 2 went out after response 1, which was lost entirely
    rows, _ = run([c2s(c1, 1), c2s(c2, 3), ("gap", S2C, 4, len(s1)), s2c(s2, 4),
                   c2s(c3, 5), s2c(s3, 6)])
    assert sorted((r.target, r.status, r.anomaly) for r in rows) == [
        ("/1", None, "lost-bytes;no-response"), ("/2", 200, ""), ("/3", 200, "")]


def test_gap_in_read_until_close_body() -> None:
    rows, _ = run([c2s(b"GET / HTTP/1.0\r\n\r\n"), s2c(b"HTTP/1.0 200 OK\r\n\r\nabc"),
                   ("gap", S2C, 3, 1000), s2c(b"def")])
    assert simple(rows) == [("GET", "/", 200, 1006, 0, "lost-bytes")]


def test_gap_while_upgrade_pending_is_forwarded() -> None:
    fake = FakeStream()
    rows, _ = run([c2s(WS_REQ), c2s(b"ab"), ("gap", C2S, 5, 3), c2s(b"cd", 6), s2c(WS_101, 7)],
                  Upper(switch_to=fake))
    assert fake.calls[:3] == [("feed", C2S, 1000, b"ab"), ("gap", C2S, 5, 3),
                              ("feed", C2S, 6, b"cd")]


# -- anomalies ----------------------------------------------------------------------------------

def test_bad_request_line_stops_c2s() -> None:
    c1, s1 = exchange("/1")
    garbage = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"GET / HTTP/1.1\r\n\r\n"
    rows, d = run([c2s(c1 + garbage), s2c(s1 + b"HTTP/1.1 400 Bad Request\r\n"
                                          b"Content-Length: 0\r\n\r\n")])
    assert [(r.target, r.status, r.anomaly) for r in rows] == [
        ("/1", 200, ""), ("", 400, "bad-request-line")]
    assert d.ignored_bytes[0] == len(garbage)
    # a whole line that is not a request-line
    rows, _ = run([c2s(b"HELLO WORLD\r\n\r\n")])
    assert [(r.method, r.status, r.anomaly) for r in rows] == [
        ("", None, "bad-request-line;no-response")]
    rows, _ = run([c2s(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")])
    assert rows[0].anomaly == "bad-request-line;no-response"


def test_bad_status_line_stops_s2c() -> None:
    c1, s1 = exchange("/1")
    c2, s2 = exchange("/2")
    rows, d = run([c2s(c1 + c2), s2c(s1 + b"SSH-2.0-OpenSSH_9.6\r\n" + s2)])
    assert [(r.target, r.status, r.anomaly) for r in rows] == [
        ("/1", 200, ""), ("/2", None, "bad-status-line")]
    rows, _ = run([s2c(b"\x00\x01binary")])
    assert [(r.method, r.status, r.anomaly) for r in rows] == [("", None, "bad-status-line")]


@pytest.mark.parametrize("req_field,resp_field", [
    (b"Host : h\r\n", b""),  # RFC 9112 section 5.1: no whitespace before the colon
    (b"NoColon\r\n", b""),
    (b"", b" folded-first\r\n"),  # obs-fold with nothing to continue (section 5.2)
    (b"Bad\x00Name: v\r\n", b""),
])
def test_bad_header_line(req_field: bytes, resp_field: bytes) -> None:
    rows, _ = run([c2s(b"GET / HTTP/1.1\r\n" + req_field + b"Accept: */*\r\n\r\n"),
                   s2c(b"HTTP/1.1 200 OK\r\n" + resp_field + b"Content-Length: 0\r\n\r\n")])
    assert simple(rows) == [("GET", "/", 200, 0, 0, "bad-header")]
    assert rows[0].host is None


def test_header_bomb_is_bounded_and_skipped() -> None:
    max_h = 4096
    bomb = b"GET /bomb HTTP/1.1\r\n" + b"X-A: " + b"a" * 100 + b"\r\n"
    events = [c2s(bomb)] + [c2s(b"X-B: " + b"b" * 1000 + b"\r\n")] * 200
    c2, s2 = exchange("/after")
    events += [c2s(b"\r\n" + c2)]
    outbox = Outbox()
    d = HttpDissector(SID, outbox, None, max_header_bytes=max_h)
    peak = 0
    for _, direction, ts, x in events:
        d.feed(direction, ts, x)
        peak = max(peak, len(d._halves[C2S].buf))
    d.feed(S2C, 3000, b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n"
           + s2)
    d.finish(4)
    assert peak <= max_h + 1010
    assert [(r.target, r.status, r.anomaly) for r in outbox.http] == [
        ("/bomb", 431, "header-too-large"), ("/after", 200, "")]


def test_header_too_large_response_and_trailer() -> None:
    big = b"HTTP/1.1 200 OK\r\nX: " + b"v" * 5000 + b"\r\n\r\nbody"
    c2, s2 = exchange("/2")
    rows, _ = run([c2s(b"GET /1 HTTP/1.1\r\n\r\n" + c2), s2c(big), s2c(b"\r\n" + s2)],
                  max_header_bytes=1024)
    assert [(r.target, r.status, r.anomaly) for r in rows] == [
        ("/1", 200, "header-too-large"), ("/2", 200, "")]
    trailer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
               + b"T: " + b"t" * 5000 + b"\r\n\r\n")
    rows, _ = run([c2s(b"GET /1 HTTP/1.1\r\n\r\n" + c2), s2c(trailer + s2)],
                  max_header_bytes=1024)
    assert [(r.target, r.status, r.anomaly) for r in rows] == [
        ("/1", 200, "header-too-large"), ("/2", 200, "")]


def test_truncated_headers() -> None:
    rows, _ = run([c2s(b"GET /cut HTTP/1.1\r\nHost: h\r\nAcc")])
    assert [(r.target, r.host, r.anomaly) for r in rows] == [
        ("/cut", None, "truncated-headers;no-response")]
    rows, _ = run([c2s(b"GET /cut HTTP/1.1")])
    assert rows[0].anomaly == "truncated-headers;no-response"
    rows, _ = run([c2s(b"GET / HTTP/1.1\r\n\r\n"), s2c(b"HTTP/1.1 200 OK\r\nContent-Le")])
    assert [(r.status, r.body_bytes, r.anomaly) for r in rows] == [(200, 0, "truncated-headers")]


def test_bad_content_length() -> None:
    # request: RFC 9112 section 6.3 rule 5, unrecoverable: c2s stops, the 400 still pairs
    rows, d = run([c2s(b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n"
                       b"helloGET / HTTP/1.1\r\n\r\n"),
                   s2c(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")])
    assert [(r.status, r.anomaly) for r in rows] == [(400, "bad-content-length")]
    assert d.ignored_bytes[0] > 0
    rows, _ = run([c2s(b"GET / HTTP/1.1\r\n\r\n"),
                   s2c(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nxx")])
    assert [(r.status, r.content_length, r.anomaly) for r in rows] == [
        (200, None, "bad-content-length")]
    # identical repeated values are one length (RFC 9110 section 8.6)
    rows, _ = run([c2s(b"GET / HTTP/1.1\r\n\r\n"),
                   s2c(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nxx")])
    assert [(r.content_length, r.body_bytes, r.anomaly) for r in rows] == [(2, 2, "")]


def test_bad_transfer_encoding_and_both_lengths() -> None:
    rows, _ = run([c2s(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxx")])
    assert rows[0].anomaly == "bad-transfer-encoding;no-response"
    # RFC 9112 section 6.3 rule 3: Transfer-Encoding overrides Content-Length (smuggling hint)
    rows, _ = run([c2s(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
                       b"\r\n\r\n0\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
                   s2c(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * 2)])
    assert [(r.target, r.request_body_bytes, r.anomaly) for r in rows] == [
        ("/", 0, "te-and-content-length"), ("/2", 0, "")]


def test_bad_chunk() -> None:
    c2, s2 = exchange("/2")
    rows, _ = run([c2s(b"GET /1 HTTP/1.1\r\n\r\n" + c2),
                   s2c(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"3\r\nabcX\r\n" + s2)])
    assert [(r.target, r.status, r.body_bytes, r.anomaly) for r in rows] == [
        ("/1", 200, 3, "bad-chunk"), ("/2", 200, 2, "")]
    # chunk-data longer than its size, ending in what could pass for a last-chunk
    rows, _ = run([c2s(b"GET /1 HTTP/1.1\r\n\r\n"),
                   s2c(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"3\r\nabc0\r\n\r\n")])
    assert [(r.status, r.anomaly) for r in rows] == [(200, "bad-chunk")]
    rows, _ = run([c2s(b"POST /1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + c2),
                   s2c(s2 + s2)])
    assert [(r.target, r.status, r.anomaly) for r in rows] == [
        ("/1", 200, "bad-chunk"), ("/2", 200, "")]


def test_truncated_body() -> None:
    rows, _ = run([c2s(b"GET / HTTP/1.1\r\n\r\n"),
                   s2c(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")])
    assert [(r.status, r.body_bytes, r.content_length, r.anomaly) for r in rows] == [
        (200, 3, 10, "truncated-body")]
    rows, _ = run([c2s(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")])
    assert [(r.request_body_bytes, r.anomaly) for r in rows] == [
        (2, "truncated-body;no-response")]


def test_no_response_and_response_without_request() -> None:
    rows, _ = run([c2s(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
                   s2c(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")])
    assert [(r.target, r.status, r.ts_response, r.anomaly) for r in rows] == [
        ("/a", 200, 2000, ""), ("/b", None, None, "no-response")]
    upper = Upper()
    rows, _ = run([s2c(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 55)], upper)
    assert [(r.method, r.ts_request, r.status, r.duration_ms, r.anomaly) for r in rows] == [
        ("", 55, 200, None, "response-without-request")]
    assert upper.responses[0][0] is None


# -- robustness -----------------------------------------------------------------------------------

def test_looks_like_http_request() -> None:
    for good in (b"GET / HTTP/1.1\r\n", b"POST /x", b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
                 b"\r\nGET / HTTP/1.0\r\n", b"M-SEARCH * HTTP/1.1\r\n", b"GET "):
        assert looks_like_http_request(good), good
    for bad in (b"", b"GET", b"get / HTTP/1.1\r\n", b"\x16\x03\x01\x00", b"PRI * HTTP/2.0\r\n",
                b"HTTP/1.1 200 OK\r\n", b"SSH-2.0-x\r\n", b"GET  / HTTP/1.1\r\n",
                b"HELLO world\r\n", b"\x00GET / HTTP/1.1"):
        assert not looks_like_http_request(bad), bad


MESSAGES = [WS_REQ, WS_101, WS_FRAME_S, b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\n",
            b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"\r\n", b"5\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n", b"HEAD / HTTP/1.1\r\n\r\n", b"0\r\n\r\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["feed", "gap"]), st.sampled_from([C2S, S2C]),
    st.one_of(st.binary(max_size=80), st.sampled_from(MESSAGES)), st.integers(1, 3000)),
    max_size=30), st.booleans())
def test_arbitrary_input_never_raises(ops: list[tuple[str, int, bytes, int]],
                                      switch: bool) -> None:
    outbox = Outbox()
    d = HttpDissector(SID, outbox, Upper(want=True, switch_to=FakeStream() if switch else None),
                      max_header_bytes=256, max_body_bytes=64)
    for ts, (kind, direction, data, nbytes) in enumerate(ops):
        if kind == "feed":
            d.feed(direction, ts, data)
        else:
            d.gap(direction, ts, nbytes)
        for h in d._halves:
            assert len(h.buf) <= 256 + 8192 + 80
    d.finish(len(ops))
    for r in outbox.http:
        assert isinstance(r.method, str) and isinstance(r.target, str)
        assert r.status is None or 100 <= r.status <= 999


def test_random_garbage_interleaved_with_http_is_bounded() -> None:
    rng = random.Random(1)
    outbox = Outbox()
    d = HttpDissector(SID, outbox, None, max_header_bytes=1024)
    c, s = exchange("/x")
    for i in range(300):
        d.feed(C2S, i, c if i % 3 else bytes(rng.randrange(256) for _ in range(200)))
        d.feed(S2C, i, s)
        if i % 7 == 0:
            d.gap(S2C, i, 13)
    d.finish(999)
    assert all(len(h.buf) <= 1024 + 8192 for h in d._halves)
    assert outbox.http and sum(r.status == 200 for r in outbox.http) > 0


@pytest.mark.parametrize("direction", [C2S, S2C])
def test_endless_garbage_without_newlines_stays_bounded(direction: int) -> None:
    d = HttpDissector(SID, Outbox(), None)
    d.gap(direction, 0, 5)  # hunting mode
    for i in range(2000):
        d.feed(direction, i, b"A" * 1000)
    assert len(d._halves[direction].buf) <= 8192
    d.finish(1)
