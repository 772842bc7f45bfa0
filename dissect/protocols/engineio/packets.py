"""Engine.IO packets: the packet types, the anomaly tags of ``sio_packets`` rows, and the decoding of one
string-encoded or binary packet (Engine.IO v4 "Packet encoding"; v3 "Encoding", "Packet").

A decoded packet is a :data:`DecodedPacket` tuple; :mod:`dissect.protocols.engineio.payloads` splits
polling bodies into them and :mod:`dissect.protocols.engineio.websocket` reads one per message.
"""

from __future__ import annotations

import binascii

# Packet types, Engine.IO v4 "Protocol" table (identical in v3 "Packet").
OPEN = 0
CLOSE = 1
PING = 2
PONG = 3
MESSAGE = 4
UPGRADE = 5
NOOP = 6
EIO_TYPE_NAMES = ("open", "close", "ping", "pong", "message", "upgrade", "noop")

# --- anomaly tags (kebab-case; several on one row are joined with ';') ---
EIO_BAD_TYPE = "eio-bad-type"  # packet type is not 0-6 (nor "b" for base64)
EIO_EMPTY_PACKET = "eio-empty-packet"  # zero-length packet (engine.io-parser: "parser error")
EIO_BAD_LENGTH = "eio-bad-length"  # v3 payload: no valid length prefix where one must be
EIO_TRUNCATED = "eio-truncated"  # v3 payload: length prefix runs past the end of the body
EIO_BAD_BASE64 = "eio-bad-base64"  # "b" packet whose base64 does not decode
EIO_BAD_OPEN = "eio-bad-open"  # open packet without a JSON object holding a string sid
WS_UNDECODABLE = "ws-undecodable"  # the WebSocket layer could not give us the message
OPEN_WRONG_DIRECTION = "open-wrong-direction"  # only the server sends open
PING_WRONG_DIRECTION = "ping-wrong-direction"  # v3 the client pings, v4 the server (probe: client)
PONG_WRONG_DIRECTION = "pong-wrong-direction"
UPGRADE_WRONG_DIRECTION = "upgrade-wrong-direction"  # only the client sends upgrade
UPGRADE_WITHOUT_PROBE = "upgrade-without-probe"  # upgrade not preceded by 2probe/3probe on a WS
EIO_BAD_ENCODING = "eio-bad-encoding"  # polling body whose Content-Encoding does not decode
#: Every Engine.IO tag of the ``sio_packets`` table's ``anomaly`` column (docs/REPORTS.md, "Anomaly
#: and warning kinds").
ANOMALIES: tuple[str, ...] = (
    EIO_BAD_TYPE, EIO_EMPTY_PACKET, EIO_BAD_LENGTH, EIO_TRUNCATED, EIO_BAD_BASE64, EIO_BAD_OPEN,
    WS_UNDECODABLE, OPEN_WRONG_DIRECTION, PING_WRONG_DIRECTION, PONG_WRONG_DIRECTION,
    UPGRADE_WRONG_DIRECTION, UPGRADE_WITHOUT_PROBE, EIO_BAD_ENCODING,
)

# One decoded packet: (type or -1, buffer, offset of the data in the buffer, binary?, data size,
# anomaly). Text packets keep their type character at buffer[0] (offset 1) so nothing is copied.
DecodedPacket = tuple[int, bytes, int, bool, int, str]


def v3_binary_packet(data: bytes) -> DecodedPacket:
    """A v3 binary packet: its first byte is the packet type (v3 "Encoding", binary)."""
    if not data:
        return (-1, data, 0, True, 0, EIO_EMPTY_PACKET)
    t = data[0]
    return (t if t <= 6 else -1, data, 1, True, len(data) - 1, "" if t <= 6 else EIO_BAD_TYPE)


def text_packet(part: bytes, version: int | None) -> DecodedPacket:
    """One string-encoded packet ``<type>[<data>]``, or ``b...`` base64 binary.

    v4 "Packet encoding / HTTP long-polling": ``b<base64>`` is always a message. v3 "Payload":
    ``b<type><base64>``.
    """
    if not part:
        return (-1, part, 0, False, 0, EIO_EMPTY_PACKET)
    t = part[0] - 0x30
    if 0 <= t <= 6:
        return (t, part, 1, False, len(part) - 1, "")
    if part[0] == 0x62:  # "b"
        if version == 3:
            t = part[1] - 0x30 if len(part) > 1 else -1
            raw = part[2:]
        else:
            t = MESSAGE
            raw = part[1:]
        try:
            data = binascii.a2b_base64(raw)
        except binascii.Error:
            return (t if 0 <= t <= 6 else -1, b"", 0, True, 0, EIO_BAD_BASE64)
        if not 0 <= t <= 6:
            return (-1, data, 0, True, len(data), EIO_BAD_TYPE)
        return (t, data, 0, True, len(data), "")
    return (-1, part, 1, False, len(part) - 1, EIO_BAD_TYPE)
