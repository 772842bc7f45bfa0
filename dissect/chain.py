"""Application dissectors chained per TCP session.

A connection whose client opens with an HTTP request gets an :class:`~dissect.http.HttpDissector`.
Its upper layer, :class:`HttpChain`, routes what HTTP finds:

- requests to an Engine.IO endpoint (``EIO=`` in the query) go to the analysis-wide
  :class:`~dissect.engineio.EngineIO` tracker, which ties polling requests on several connections
  and the WebSocket that upgrades them into one Engine.IO session by ``sid``;
- a ``101 Switching Protocols`` to ``websocket`` is checked (RFC 6455 section 4.2.2, RFC 7692
  negotiation), written as a ``websocket`` row of ``handshakes``, and the rest of the stream goes to
  a :class:`~dissect.websocket.WebSocketDissector` whose messages feed Engine.IO when the target
  was an Engine.IO endpoint;
- a refused upgrade (any other status) is a ``websocket`` handshake row with ok false.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .engineio import EngineIO
from .flows import Limits
from .http import HttpDissector, HttpRequest, HttpResponse, looks_like_http_request
from .records import C2S, Handshake, Sink, ms
from .tcp import StreamDissector, TcpConnection
from .websocket import DeflateParams, WebSocketDissector, frames_tile, negotiate

if TYPE_CHECKING:
    from .parallel import Ownership


def _wants_websocket(request: HttpRequest) -> bool:
    return "websocket" in request.headers.get("upgrade", "").lower()


class HttpChain:
    """The upper layer of one connection's HTTP dissector (``dissect.http.HttpUpper``)."""

    __slots__ = ("conn", "chain")

    def __init__(self, conn: TcpConnection, chain: Chain) -> None:
        self.conn = conn
        self.chain = chain

    def want_body(self, request: HttpRequest) -> bool:
        return EngineIO.is_engineio_target(request.target)

    def http_request(self, session_id: int, request: HttpRequest) -> None:
        # Every Engine.IO request as soon as it is complete: POST bodies carry c2s packets, and
        # an open GET that is never answered still counts as a failed engineio handshake.
        if EngineIO.is_engineio_target(request.target):
            self.chain.eio.polling_request(session_id, request.ts, request.method, request.target,
                                           request.headers, request.body)

    def http_response(self, session_id: int, request: HttpRequest | None,
                      response: HttpResponse) -> None:
        if request is None or response.status == 101:
            return
        if EngineIO.is_engineio_target(request.target):
            self.chain.eio.polling_response(session_id, request.ts, response.ts, request.method,
                                            request.target, response.status, response.headers,
                                            response.body)
        if _wants_websocket(request) and response.status >= 200:
            self.chain.sink.handshakes.append(Handshake(
                session_id, "websocket", request.ts, response.ts, ms(request.ts, response.ts), False,
                f"status={response.status}", "websocket"))

    def http_upgrade(self, session_id: int, request: HttpRequest,
                     response: HttpResponse) -> StreamDissector | None:
        if not _wants_websocket(request):
            return None
        chain = self.chain
        ok, detail, deflate = negotiate(request.headers, response.headers)
        chain.sink.handshakes.append(Handshake(
            session_id, "websocket", request.ts, response.ts, ms(request.ts, response.ts), ok, detail,
            "websocket"))
        self.conn.level = "websocket"
        upper = None
        if EngineIO.is_engineio_target(request.target):
            upper = chain.eio.websocket_opened(session_id, request.ts, response.ts, request.target)
        ws = WebSocketDissector(session_id, chain.sink, deflate, upper,
                                max_message_bytes=chain.limits.max_message_bytes)
        # HTTP hands ws the bytes it already holds; later segments skip the HTTP layer.
        self.conn.app = ws
        return ws


class Chain:
    """Chooses each connection's first dissector and owns the analysis-wide Engine.IO state."""

    def __init__(self, sink: Sink, limits: Limits) -> None:
        self.sink = sink
        self.limits = limits
        self.eio = EngineIO(sink)
        self.ownership: Ownership | None = None  # --jobs

    def attach(self, conn: TcpConnection) -> None:
        """Called for every new TCP connection: decide on its first payload."""
        conn.factory = self.first_data

    def first_data(self, conn: TcpConnection, direction: int, ts: int, data: bytes) -> None:
        is_http = direction == C2S and looks_like_http_request(data)
        own = self.ownership
        if own is not None:
            if is_http:
                mine = own.first_request(conn.session_id, _request_target(data))
            else:
                mine = own.owners.get(conn.session_id) == own.index
            if not mine:
                conn.foreign = True
                return
        if is_http:
            app = HttpDissector(conn.session_id, self.sink, HttpChain(conn, self),
                                max_body_bytes=self.limits.max_body_bytes)
            conn.app = app
            conn.level = "http"
            app.feed(direction, ts, data)
            return
        ws, rsv1 = frames_tile(data, masked=direction == C2S)
        if ws:
            # A capture that starts after the upgrade: WebSocket frames, no handshake to read.
            # RSV1 means permessage-deflate was negotiated; its parameters are unknown.
            deflate = DeflateParams(False, False, 15, 15) if rsv1 else None
            conn.app = WebSocketDissector(conn.session_id, self.sink, deflate, None,
                                          max_message_bytes=self.limits.max_message_bytes)
            conn.level = "websocket"
            conn.anomaly = "websocket-handshake-not-captured"
            conn.app.feed(direction, ts, data)
        # Anything else (a server that speaks first, TLS, other protocols) is counted at the
        # TCP layer only.

    def app_level(self, session_id: int) -> str | None:
        """The highest layer Engine.IO/Socket.IO saw on a session, once, when its row is written."""
        return self.eio.app_levels.pop(session_id, None)

    def finish(self, ts: int) -> None:
        self.eio.finish(ts)


def _request_target(data: bytes) -> str:
    """The request-target of the request line at the start of ``data`` (RFC 9112 section 3)."""
    line = data[: data.find(b"\r\n") if b"\r\n" in data[:8192] else 8192]
    parts = line.split(b" ")
    return parts[1].decode("latin-1") if len(parts) > 1 else ""
