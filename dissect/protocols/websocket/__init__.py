"""WebSocket: RFC 6455 frames and messages, RFC 7692 permessage-deflate.

:mod:`.handshake` judges the opening handshake (RFC 6455 section 4, RFC 7692 section 7.1) for the
``handshakes`` row and the deflate parameters; :mod:`.frames` holds the opcodes, the anomaly tags
and the one judge of a frame header (sniffing, resync); :mod:`.message` a message being
reassembled and its UTF-8 check; :mod:`.deflate` the per-direction inflating stage;
:mod:`.dissector` the sans-IO :class:`WebSocketDissector` that turns stream bytes into
``ws_frames`` and ``ws_messages`` rows.
"""

from __future__ import annotations

from dissect.protocols.websocket.dissector import WebSocketDissector, WsUpper
from dissect.protocols.websocket.frames import (
    ANOMALY_TAGS,
    CLOSE_BODY_1_BYTE,
    CONTINUATION_WITHOUT_START,
    CONTROL_FRAGMENTED,
    CONTROL_TOO_LONG,
    FRAME_AFTER_CLOSE,
    INFLATE_CONTEXT_LOST,
    INFLATE_FAILED,
    INVALID_CLOSE_CODE,
    INVALID_UTF8,
    LENGTH_MSB_SET,
    LENGTH_NOT_MINIMAL,
    LOST_BYTES,
    MASKED_SERVER_FRAME,
    MESSAGE_INTERRUPTED,
    MESSAGE_TOO_LARGE,
    NEW_MESSAGE_INSIDE_FRAGMENTED,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    OPCODE_NAMES,
    RESERVED_OPCODE,
    RESYNC,
    RSV1_ON_CONTINUATION,
    RSV1_ON_CONTROL,
    RSV_WITHOUT_EXTENSION,
    TRUNCATED,
    UNMASKED_CLIENT_FRAME,
    frames_tile,
)
from dissect.protocols.websocket.handshake import GUID, DeflateParams, accept_key, negotiate

__all__ = [
    "ANOMALY_TAGS",
    "CLOSE_BODY_1_BYTE",
    "CONTINUATION_WITHOUT_START",
    "CONTROL_FRAGMENTED",
    "CONTROL_TOO_LONG",
    "FRAME_AFTER_CLOSE",
    "GUID",
    "INFLATE_CONTEXT_LOST",
    "INFLATE_FAILED",
    "INVALID_CLOSE_CODE",
    "INVALID_UTF8",
    "LENGTH_MSB_SET",
    "LENGTH_NOT_MINIMAL",
    "LOST_BYTES",
    "MASKED_SERVER_FRAME",
    "MESSAGE_INTERRUPTED",
    "MESSAGE_TOO_LARGE",
    "NEW_MESSAGE_INSIDE_FRAGMENTED",
    "OPCODE_NAMES",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "RESERVED_OPCODE",
    "RESYNC",
    "RSV1_ON_CONTINUATION",
    "RSV1_ON_CONTROL",
    "RSV_WITHOUT_EXTENSION",
    "TRUNCATED",
    "UNMASKED_CLIENT_FRAME",
    "DeflateParams",
    "WebSocketDissector",
    "WsUpper",
    "accept_key",
    "frames_tile",
    "negotiate",
]
