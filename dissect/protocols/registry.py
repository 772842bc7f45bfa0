"""Which dissector gets a connection's bytes: two tables and the one place that reads them.

- :data:`FIRST_PAYLOAD`: tried in order on a connection's first in-order payload; the first row
  whose ``sniff`` says yes starts the connection's first dissector (HTTP when the client opens
  with a request line; WebSocket frames when the capture starts after the upgrade).
- :data:`UPGRADES`: after HTTP's ``101 Switching Protocols`` (RFC 9110 section 15.2.2), the
  ``Upgrade`` token names the row that takes over (after Zeek's ``HTTP::upgrade_analyzers``).

A protocol that stops (HTTP at its 101) hands back the bytes it held (h11's ``trailing_data``);
the :class:`Dispatcher` picks the next dissector from the tables and calls
:meth:`~dissect.transport.tcp.TcpConnection.switch`, the only way a connection's next-bytes
pointer changes. A new protocol is one row here.

The dispatcher also owns the analysis-wide Engine.IO tracker: requests to an Engine.IO endpoint
(``EIO=`` in the query) on any connection meet there, so the polling requests of one Engine.IO
session and the WebSocket that upgrades them become one session by ``sid``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from dissect.protocols.engineio import EngineIO, request_query
from dissect.protocols.http import HttpDissector, HttpRequest, HttpResponse, Trailing, looks_like_http_request
from dissect.protocols.tls import KeyLog, looks_like_tls
from dissect.protocols.tls.dissector import TlsDissector, TlsPlaintext
from dissect.protocols.websocket import DeflateParams, WebSocketDissector, frames_tile, negotiate
from dissect.records import C2S, CAPTURE_ENDED, Handshake, Outbox, capture_ended, ms
from dissect.transport.limits import Limits
from dissect.transport.ownership import Ownership
from dissect.transport.tcp import StreamDissector, TcpConnection

WEBSOCKET_HANDSHAKE_NOT_CAPTURED = "websocket-handshake-not-captured"
#: The ``sessions`` table's anomaly tags set here, and the ``decode`` counters (docs/REPORTS.md).
ANOMALIES: tuple[str, ...] = (WEBSOCKET_HANDSHAKE_NOT_CAPTURED,)
DECODE_COUNTERS: tuple[str, ...] = ("upgraded-bytes-not-parsed",)


class Carrier(Protocol):
    """A byte stream a protocol runs on: a TCP connection, or the plaintext inside TLS. Its
    ``switch`` alone changes where its next bytes go."""

    session_id: int

    def switch(self, app: StreamDissector | None, app_protocol: str | None = None,
               trailing: Iterable[tuple[int, int, bytes | int]] = (), anomaly: str = "") -> None: ...


class Start(NamedTuple):
    """What a table row starts: the dissector, the session's new app_protocol, a session anomaly."""

    dissector: StreamDissector
    app_protocol: str
    anomaly: str = ""


class FirstPayload(NamedTuple):
    """A row of :data:`FIRST_PAYLOAD`."""

    name: str
    sniff: Callable[[int, bytes], bool]  # (direction, first in-order bytes) -> is it this protocol?
    start: Callable[[Dispatcher, Carrier, int, bytes], Start]
    # ``--jobs``: the flow's affinity key from its first bytes (key, shared until known), or None
    affinity: Callable[[bytes], tuple[str | None, bool]] | None = None


# -- HTTP/1.x ----------------------------------------------------------------------------------------

def _sniff_http(direction: int, data: bytes) -> bool:
    return direction == C2S and looks_like_http_request(data)


def _start_http(dispatcher: Dispatcher, conn: Carrier, direction: int, data: bytes) -> Start:
    http = HttpDissector(conn.session_id, dispatcher.outbox, HttpRouting(conn, dispatcher),
                         max_body_bytes=dispatcher.limits.max_body_bytes)
    return Start(http, "http")


def http_affinity(data: bytes) -> tuple[str | None, bool]:
    """An Engine.IO request names its session's ``sid``; its opening GET (no sid yet) is shared."""
    target = _request_target(data)
    if not EngineIO.is_engineio_target(target):
        return None, False
    # Read as the Engine.IO tracker reads it, so the sid hashed here is the one it names.
    query = request_query(target)
    sid = query.get("sid", "")
    return (sid or None), not sid and query.get("transport", "") != "websocket"


def _request_target(data: bytes) -> str:
    """The request-target of the request line at the start of ``data`` (RFC 9112 section 3)."""
    line = data[: data.find(b"\r\n") if b"\r\n" in data[:8192] else 8192]
    parts = line.split(b" ")
    return parts[1].decode("latin-1") if len(parts) > 1 else ""


# -- WebSocket without its handshake -----------------------------------------------------------------

def _sniff_websocket(direction: int, data: bytes) -> bool:
    return frames_tile(data, masked=direction == C2S)[0]


def _start_websocket_midstream(dispatcher: Dispatcher, conn: Carrier, direction: int,
                               data: bytes) -> Start:
    # A capture that starts after the upgrade: WebSocket frames, no handshake to read.
    # RSV1 means permessage-deflate was negotiated; its parameters are unknown.
    rsv1 = frames_tile(data, masked=direction == C2S)[1]
    deflate = DeflateParams(False, False, 15, 15) if rsv1 else None
    ws = WebSocketDissector(conn.session_id, dispatcher.outbox, deflate, None,
                            max_message_bytes=dispatcher.limits.max_message_bytes,
                            payloads=dispatcher.limits.payloads)
    return Start(ws, "websocket", WEBSOCKET_HANDSHAKE_NOT_CAPTURED)


# -- TLS ---------------------------------------------------------------------------------------------

def _sniff_tls(direction: int, data: bytes) -> bool:
    return direction == C2S and looks_like_tls(data)


def _start_tls(dispatcher: Dispatcher, conn: Carrier, direction: int, data: bytes) -> Start:
    """TLS (RFC 8446, RFC 5246): decrypted with the run's key log; the plaintext goes through this
    table again, as a connection's first bytes do."""
    tls = TlsDissector(conn.session_id, dispatcher.outbox, dispatcher.keylog, conn,  # type: ignore[arg-type]
                       dispatcher.plaintext_first_data)
    return Start(tls, "tls")


def _tls_affinity(data: bytes) -> tuple[str | None, bool]:
    """``--jobs``: what TLS carries is unknown until it is decrypted (an Engine.IO session over
    https spans connections), so every TLS connection goes to one worker."""
    return "tls", False


FIRST_PAYLOAD: list[FirstPayload] = [
    FirstPayload("http", _sniff_http, _start_http, http_affinity),
    FirstPayload("tls", _sniff_tls, _start_tls, _tls_affinity),
    FirstPayload("websocket", _sniff_websocket, _start_websocket_midstream),
]
# Anything else (a server that speaks first, other protocols) is counted at the TCP layer only.


def first_payload_row(direction: int, data: bytes) -> FirstPayload | None:
    """The first :data:`FIRST_PAYLOAD` row whose sniffer recognises ``data``."""
    for row in FIRST_PAYLOAD:
        if row.sniff(direction, data):
            return row
    return None


# -- after a 101 -------------------------------------------------------------------------------------

def _websocket_after_101(dispatcher: Dispatcher, conn: Carrier, request: HttpRequest,
                         response: HttpResponse) -> Start:
    """RFC 6455 section 4.2.2 checks and RFC 7692 negotiation, a ``websocket`` handshake row, and
    a WebSocket dissector whose messages feed Engine.IO when the target was an Engine.IO endpoint."""
    ok, detail, deflate = negotiate(request.headers, response.headers)
    dispatcher.outbox.handshakes.append(Handshake(
        conn.session_id, "websocket", request.ts, response.ts, ms(request.ts, response.ts), ok, detail,
        "websocket"))
    upper = None
    if EngineIO.is_engineio_target(request.target):
        upper = dispatcher.eio.websocket_opened(conn.session_id, request.ts, response.ts, request.target)
    ws = WebSocketDissector(conn.session_id, dispatcher.outbox, deflate, upper,
                            max_message_bytes=dispatcher.limits.max_message_bytes,
                            payloads=dispatcher.limits.payloads)
    return Start(ws, "websocket")


UpgradeStart = Callable[["Dispatcher", Carrier, HttpRequest, HttpResponse], Start]

UPGRADES: dict[str, UpgradeStart] = {
    "websocket": _websocket_after_101,
}


def _upgrade_row(request: HttpRequest) -> UpgradeStart | None:
    """The :data:`UPGRADES` row of the first protocol the request offered that has one (RFC 9110
    section 7.8: the client lists them in its Upgrade header; a 101 switches to one of them)."""
    for token in request.headers.get("upgrade", "").split(","):
        row = UPGRADES.get(token.split("/")[0].strip().lower())
        if row is not None:
            return row
    return None


def _wants_websocket(request: HttpRequest) -> bool:
    return "websocket" in request.headers.get("upgrade", "").lower()


class HttpRouting:
    """HTTP's upper layer on one connection (``dissect.protocols.http.HttpUpper``): Engine.IO
    requests to the tracker, refused WebSocket upgrades to ``handshakes``, a 101 through
    :data:`UPGRADES`."""

    __slots__ = ("conn", "dispatcher")

    def __init__(self, conn: Carrier, dispatcher: Dispatcher) -> None:
        self.conn = conn
        self.dispatcher = dispatcher

    def want_body(self, request: HttpRequest) -> bool:
        return EngineIO.is_engineio_target(request.target)

    def http_request(self, session_id: int, request: HttpRequest) -> None:
        # Every Engine.IO request as soon as it is complete: POST bodies carry c2s packets, and
        # an open GET that is never answered still counts as a failed engineio handshake.
        if EngineIO.is_engineio_target(request.target):
            self.dispatcher.eio.polling_request(session_id, request.ts, request.method, request.target,
                                                request.headers, request.body)

    def http_response(self, session_id: int, request: HttpRequest | None,
                      response: HttpResponse) -> None:
        if request is None or response.status == 101:
            return
        if EngineIO.is_engineio_target(request.target):
            self.dispatcher.eio.polling_response(session_id, request.ts, response.ts, request.method,
                                                 request.target, response.status, response.headers,
                                                 response.body)
        if _wants_websocket(request) and response.status >= 200:
            self.dispatcher.outbox.handshakes.append(Handshake(
                session_id, "websocket", request.ts, response.ts, ms(request.ts, response.ts), False,
                f"status={response.status}", "websocket"))

    def http_unanswered(self, session_id: int, request: HttpRequest) -> None:
        """An upgrade to WebSocket that got no response: a failed ``websocket`` handshake, or ok
        empty ("capture ended") when the capture stopped before an answer could come."""
        if _wants_websocket(request):
            ok: bool | None = False
            detail = "no response"
            if capture_ended(request.ts, self.dispatcher.outbox.capture_end):
                ok, detail = None, CAPTURE_ENDED
            self.dispatcher.outbox.handshakes.append(Handshake(
                session_id, "websocket", request.ts, None, None, ok, detail, "websocket"))

    def http_switched(self, session_id: int, request: HttpRequest, response: HttpResponse,
                      trailing: Trailing) -> None:
        """HTTP stopped at a 101: the next dissector is the :data:`UPGRADES` row of the token."""
        self.dispatcher.switched(self.conn, request, response, trailing)


class Dispatcher:
    """Chooses each connection's dissectors from the tables; owns the Engine.IO tracker."""

    def __init__(self, outbox: Outbox, limits: Limits, ownership: Ownership | None = None,
                 keylog: KeyLog | None = None) -> None:
        self.outbox = outbox
        self.limits = limits
        self.keylog = keylog if keylog is not None else KeyLog()  # TLS secrets (--tls-keylog, pcapng DSBs)
        self.eio = EngineIO(outbox, ownership.reports if ownership is not None else None, limits.payloads)
        self.ownership = ownership  # --jobs

    def first_data(self, conn: TcpConnection, direction: int, ts: int, data: bytes) -> None:
        """A connection's first in-order payload (its ``on_first_data`` hook)."""
        row = first_payload_row(direction, data)
        if row is None:
            return
        own = self.ownership
        if own is not None:
            key, shared = row.affinity(data) if row.affinity is not None else (None, False)
            mine = own.regroup(conn.session_id, key, shared) if key or shared else own.mine(conn.session_id)
            if not mine:
                conn.disown()
                return
        self._start(row, conn, direction, ts, data)

    def plaintext_first_data(self, plaintext: TlsPlaintext, direction: int, ts: int, data: bytes) -> None:
        """The first decrypted bytes of a TLS connection: the same table as a connection's first
        bytes (the flow's owner is decided already)."""
        row = first_payload_row(direction, data)
        if row is not None:
            self._start(row, plaintext, direction, ts, data)

    def _start(self, row: FirstPayload, carrier: Carrier, direction: int, ts: int, data: bytes) -> None:
        start = row.start(self, carrier, direction, data)
        carrier.switch(start.dissector, start.app_protocol, [(direction, ts, data)], start.anomaly)

    def switched(self, conn: Carrier, request: HttpRequest, response: HttpResponse,
                 trailing: Trailing) -> None:
        """HTTP switched protocols: start the :data:`UPGRADES` row of the protocol offered, or
        leave the rest of the connection unparsed (counted)."""
        row = _upgrade_row(request)
        if row is None:
            self.outbox.counters["upgraded-bytes-not-parsed"] += sum(
                len(item) for _d, _ts, item in trailing if not isinstance(item, int))
            conn.switch(NotParsed(self.outbox.counters))
            return
        start = row(self, conn, request, response)
        conn.switch(start.dissector, start.app_protocol, trailing, start.anomaly)

    def app_protocol(self, session_id: int) -> str | None:
        """The highest layer Engine.IO/Socket.IO saw on a session, once, when its row is written."""
        return self.eio.app_protocols.pop(session_id, None)

    def finish(self, ts: int) -> None:
        self.eio.finish(ts)


class NotParsed:
    """The bytes of a protocol nobody dissects (after a 101 to an unknown protocol): counted."""

    __slots__ = ("counters",)

    def __init__(self, counters: dict[str, int]) -> None:
        self.counters = counters

    def feed(self, direction: int, ts: int, data: bytes) -> None:
        self.counters["upgraded-bytes-not-parsed"] += len(data)

    def gap(self, direction: int, ts: int, nbytes: int) -> None:
        pass

    def finish(self, ts: int) -> None:
        pass
