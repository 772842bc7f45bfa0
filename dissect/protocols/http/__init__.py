"""HTTP/1.x dissector: a sans-IO parser of both directions of one TCP connection.

Message syntax is RFC 9112: start lines (section 3 request-line, section 4 status-line), field
lines (section 5), message body length (section 6.3) and the chunked transfer coding (section
7.1). The parser is fed the in-order bytes of each direction with their timestamps (integer
nanoseconds); it pairs responses with requests in FIFO order (pipelining, RFC 9112 section 9.3.2),
appends one :class:`~dissect.records.HttpExchange` row per pair to the
:class:`~dissect.records.Outbox`, and reports complete messages to an optional upper layer
(Engine.IO polling, the WebSocket handshake). On a 101 Switching Protocols (RFC 9110 section
15.2.2) HTTP stops and hands back what it holds of the new protocol (h11's ``trailing_data``);
the connection's owner decides which dissector gets it.

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

The package, in the order bytes go through it: :mod:`.syntax` (RFC 9112 syntax, the parser's
states and bounds), :mod:`.state` (what is held per direction and per exchange), :mod:`.readers`
(one reader per state, from a table), :mod:`.dissector` (pairing, rows, the switch) and
:mod:`.messages` (what the layer above is told).
"""

from __future__ import annotations

from dissect.protocols.http.dissector import HttpDissector
from dissect.protocols.http.messages import HttpRequest, HttpResponse, HttpUpper, Trailing
from dissect.protocols.http.syntax import looks_like_http_request

__all__ = [
    "HttpDissector",
    "HttpRequest",
    "HttpResponse",
    "HttpUpper",
    "Trailing",
    "looks_like_http_request",
]
