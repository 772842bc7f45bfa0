"""The switches of every fast path: a shortcut of the common case beside the general code.

Each fast path reads its switch once (when its loop or its dissector starts) and must give
exactly the rows of the general path it shortcuts; ``tests/test_fast_paths.py`` turns each one off
and compares, on the corpus and on generated traffic. ``DISSECT_NO_FAST_PATHS=1`` in the
environment turns them all off (for comparing, or to rule them out when hunting a bug).
"""

from __future__ import annotations

import os

_ON = os.environ.get("DISSECT_NO_FAST_PATHS", "") in ("", "0")

# pipeline: an in-order TCP segment with nothing held goes straight to its dissector
# (the in-order case of TcpConnection.data, inline in the per-packet loop).
TCP_IN_ORDER = _ON
# WebSocket: a whole unfragmented frame in one segment is parsed, unmasked and emitted in place
# (WebSocketDissector's general frame-by-frame reader).
WS_WHOLE_FRAME = _ON
# Engine.IO over WebSocket: an EVENT or ACK on "/" (``42[...``, ``421[...``, ``431[...``) has its
# header and event name read without the general Socket.IO header parser.
SIO_EVENT_HEADER = _ON
