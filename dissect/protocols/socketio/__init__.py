"""Socket.IO packets carried in Engine.IO ``message`` packets.

References (read them before changing anything here):

* Socket.IO protocol v5 (socket.io 3+, on Engine.IO 4): socketio/socket.io-protocol, branch
  ``main``, sections "Exchange protocol" and "Packet encoding".
* Socket.IO protocol v4 (socket.io 1 and 2, on Engine.IO 3): socketio/socket.io-protocol, branch
  ``v4``, sections "Packet types", "Packet encoding" and "Exchange protocol".
* The reference decoder, socket.io-parser (``Decoder.decodeString``): where the documents are
  silent, its behaviour is what real peers accept.

The package, in the order a message goes through it:

* :mod:`.packets`: the default parser's encoding (packet types, anomaly tags, :func:`parse_header`);
* :mod:`.msgpack_parser`: socket.io-msgpack-parser's packets, decoded into the same fields;
* :mod:`.state`: :class:`SocketIOState`, the per-Engine.IO-session state (namespaces being connected,
  acks waiting, attachments expected); :mod:`dissect.protocols.engineio` feeds it one message at a
  time and turns each :class:`SioResult` into a ``sio_packets`` row;
* :mod:`.sockets`: the life of every socket (connect, disconnect reason, pings): ``sio_sockets``.

The names other layers use are importable from the package itself.
"""

from __future__ import annotations

from dissect.protocols.socketio.msgpack_parser import (
    MsgpackPacket,
    looks_like_msgpack_map,
    msgpack_packet,
)
from dissect.protocols.socketio.packets import (
    ACK,
    ACK_ID_REUSED,
    ACK_WITHOUT_EVENT,
    ANOMALIES,
    ATTACHMENT_UNEXPECTED,
    ATTACHMENTS_INVALID,
    ATTACHMENTS_MISSING,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    CONNECT_UNSOLICITED,
    CUSTOM_PARSER,
    DECODE_COUNTERS,
    DIGITS,
    DISCONNECT,
    EVENT,
    MAX_ACK_ID_DIGITS,
    MAX_ATTACHMENTS,
    MODE_CUSTOM,
    MODE_EIO,
    MODE_MSGPACK,
    MODE_SIO,
    MODE_UNKNOWN,
    RESERVED_EVENT_NAME,
    RESERVED_EVENTS,
    SIO_BAD_ACK_ID,
    SIO_BAD_PAYLOAD,
    SIO_BAD_TYPE,
    SIO_TYPE_NAMES,
    SIO_WRONG_DIRECTION,
    SioHeader,
    connect_error_message,
    join_tags,
    parse_header,
)
from dissect.protocols.socketio.state import (
    GROUP_END,
    GROUP_MORE,
    GROUP_NONE,
    GROUP_START,
    SioResult,
    SocketIOState,
)

__all__ = [
    "ACK",
    "ACK_ID_REUSED",
    "ACK_WITHOUT_EVENT",
    "ANOMALIES",
    "ATTACHMENTS_INVALID",
    "ATTACHMENTS_MISSING",
    "ATTACHMENT_UNEXPECTED",
    "BINARY_ACK",
    "BINARY_EVENT",
    "CONNECT",
    "CONNECT_ERROR",
    "CONNECT_UNSOLICITED",
    "CUSTOM_PARSER",
    "DECODE_COUNTERS",
    "DIGITS",
    "DISCONNECT",
    "EVENT",
    "GROUP_END",
    "GROUP_MORE",
    "GROUP_NONE",
    "GROUP_START",
    "MAX_ACK_ID_DIGITS",
    "MAX_ATTACHMENTS",
    "MODE_CUSTOM",
    "MODE_EIO",
    "MODE_MSGPACK",
    "MODE_SIO",
    "MODE_UNKNOWN",
    "MsgpackPacket",
    "RESERVED_EVENTS",
    "RESERVED_EVENT_NAME",
    "SIO_BAD_ACK_ID",
    "SIO_BAD_PAYLOAD",
    "SIO_BAD_TYPE",
    "SIO_TYPE_NAMES",
    "SIO_WRONG_DIRECTION",
    "SioHeader",
    "SioResult",
    "SocketIOState",
    "connect_error_message",
    "join_tags",
    "looks_like_msgpack_map",
    "msgpack_packet",
    "parse_header",
]
