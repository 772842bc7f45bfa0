"""Engine.IO sessions over HTTP long-polling and WebSocket, and the Socket.IO packets they carry.

References (read them before changing anything here):

* Engine.IO protocol v4: socketio/engine.io-protocol, branch ``main``: "Transports", "Protocol"
  (handshake, heartbeat, upgrade) and "Packet encoding".
* Engine.IO protocol v3: same repository, branch ``v3``: "Encoding" (packet, payload),
  "Transports" (XHR, JSONP) and "Transport upgrading".
* The reference parser, engine.io-parser (5.x for v4, 2.x for v3): where the documents are silent,
  its behaviour is what real peers accept.

An Engine.IO session spans TCP connections: polling requests on one or several connections, then
perhaps a WebSocket; all of them name the session by its ``sid`` query parameter. :class:`EngineIO`
holds every session of one analysis; the HTTP layer calls :meth:`EngineIO.polling_request` and
:meth:`EngineIO.polling_response`, the WebSocket layer :meth:`EngineIOWebSocket.ws_message`.

Every Engine.IO packet becomes one ``sio_packets`` row (:class:`dissect.records.SioPacket`), with
the Socket.IO packet of a ``message`` read by :mod:`dissect.protocols.socketio`. The rows of a BINARY_EVENT /
BINARY_ACK and of its attachments are appended together once the last attachment arrived (so the
header row can say when some never came); every other row is appended as soon as it is read.

Modules: :mod:`.packets` (packet types, anomaly tags, one packet's decoding), :mod:`.payloads`
(polling bodies), :mod:`.query` (request-targets), :mod:`.session` (one session's state),
:mod:`.websocket` (the WebSocket transport) and :mod:`.tracker` (:class:`EngineIO`).
"""

from __future__ import annotations

from dissect.protocols.engineio.packets import (
    CLOSE,
    EIO_BAD_BASE64,
    EIO_BAD_ENCODING,
    EIO_BAD_LENGTH,
    EIO_BAD_OPEN,
    EIO_BAD_TYPE,
    EIO_EMPTY_PACKET,
    EIO_TRUNCATED,
    EIO_TYPE_NAMES,
    MESSAGE,
    NOOP,
    OPEN,
    OPEN_WRONG_DIRECTION,
    PING,
    PING_WRONG_DIRECTION,
    PONG,
    PONG_WRONG_DIRECTION,
    UPGRADE,
    UPGRADE_WITHOUT_PROBE,
    UPGRADE_WRONG_DIRECTION,
    WS_UNDECODABLE,
    DecodedPacket,
)
from dissect.protocols.engineio.payloads import (
    content_decoded,
    decode_payload,
    split_v3_binary,
    split_v3_text,
    split_v4,
    utf16_prefix_end,
)
from dissect.protocols.engineio.query import is_engineio_target, request_query
from dissect.protocols.engineio.tracker import EngineIO
from dissect.protocols.engineio.websocket import EngineIOWebSocket

# The Socket.IO state every session holds (tests spy on it through this package).
from dissect.protocols.socketio import SocketIOState

__all__ = [
    "CLOSE",
    "EIO_BAD_BASE64",
    "EIO_BAD_ENCODING",
    "EIO_BAD_LENGTH",
    "EIO_BAD_OPEN",
    "EIO_BAD_TYPE",
    "EIO_EMPTY_PACKET",
    "EIO_TRUNCATED",
    "EIO_TYPE_NAMES",
    "MESSAGE",
    "NOOP",
    "OPEN",
    "OPEN_WRONG_DIRECTION",
    "PING",
    "PING_WRONG_DIRECTION",
    "PONG",
    "PONG_WRONG_DIRECTION",
    "UPGRADE",
    "UPGRADE_WITHOUT_PROBE",
    "UPGRADE_WRONG_DIRECTION",
    "WS_UNDECODABLE",
    "DecodedPacket",
    "EngineIO",
    "EngineIOWebSocket",
    "SocketIOState",
    "content_decoded",
    "decode_payload",
    "is_engineio_target",
    "request_query",
    "split_v3_binary",
    "split_v3_text",
    "split_v4",
    "utf16_prefix_end",
]
