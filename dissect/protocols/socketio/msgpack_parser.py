"""socket.io-msgpack-parser: every Socket.IO packet one binary Engine.IO message holding a msgpack map
(``{type, data, nsp, id}``), decoded into the same fields as the default parser's packets."""

from __future__ import annotations

import base64
import json
from typing import NamedTuple
from zlib import crc32

import msgpack

from dissect.protocols.socketio.packets import (
    ACK,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    NO_ACK_ID_TYPES,
    RESERVED_EVENT_NAME,
    RESERVED_EVENTS,
    SIO_BAD_ACK_ID,
    SIO_BAD_PAYLOAD,
    clean_text,
    join_tags,
)


def looks_like_msgpack_map(data: bytes, start: int = 0) -> bool:
    """True when ``data[start:]`` starts like a msgpack map with a string key.

    socket.io-msgpack-parser encodes every packet as one map (``{type, data, nsp, id}``) in one
    binary message; a fixmap (0x80-0x8f), map16 (0xde) or map32 (0xdf) whose first key is a
    fixstr (0xa0-0xbf) or str8 (0xd9) is what it looks like.
    """
    n = len(data)
    if start >= n:
        return False
    b = data[start]
    if 0x81 <= b <= 0x8F:
        k = start + 1
    elif b == 0xDE:
        k = start + 3
    elif b == 0xDF:
        k = start + 5
    else:
        return False
    if k >= n:
        return False
    key = data[k]
    return 0xA0 <= key <= 0xBF or key == 0xD9


class MsgpackPacket(NamedTuple):
    """A socket.io-msgpack-parser packet, decoded (:func:`msgpack_packet`)."""

    type: int
    namespace: str
    ack_id: int | None
    event: str | None
    json: str  # the packet's data as the default parser would have sent it (binary as base64)
    digest: int | None  # EVENT: CRC-32 of the msgpack bytes of its data (name and arguments)
    anomaly: str


class _Undefined:
    """JavaScript's ``undefined`` as notepack.io (socket.io-msgpack-parser's encoder) writes it:
    ext type 0 holding one zero byte."""


_UNDEFINED = _Undefined()


def _ext(code: int, data: bytes) -> object:
    if code == 0 and data == b"\x00":
        return _UNDEFINED
    return msgpack.ExtType(code, data)


def _defined(value: object) -> object:
    """``value`` as JSON.stringify sees it: ``undefined`` properties dropped, ``null`` in arrays."""
    if isinstance(value, dict):
        return {k: _defined(v) for k, v in value.items() if v is not _UNDEFINED}
    if isinstance(value, list):
        return [_defined(v) for v in value]
    return None if value is _UNDEFINED else value


def _jsonable(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"_binary_base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, msgpack.ExtType):
        return {"_ext": value.code, "_binary_base64": base64.b64encode(value.data).decode("ascii")}
    raise TypeError(type(value).__name__)


def msgpack_packet(data: bytes, start: int = 0) -> MsgpackPacket | None:
    """``data[start:]`` as a packet of socket.io-msgpack-parser (its ``Encoder``: the packet object
    ``{type, data, nsp, id}`` as one msgpack map; binary data inline, so no BINARY_* types and no
    attachments); None when it is not one (another custom parser, or damaged): a packet needs an
    integer ``type`` of 0-4 and a string ``nsp``, as the parser's ``checkPacket`` does."""
    try:
        obj = _defined(msgpack.unpackb(
            data[start:], raw=False, strict_map_key=False, ext_hook=_ext, max_bin_len=len(data),
            max_str_len=len(data), max_array_len=len(data), max_map_len=len(data), max_ext_len=len(data)))
    except (ValueError, msgpack.UnpackException, msgpack.ExtraData, TypeError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    t, nsp, ack_id, payload = obj.get("type"), obj.get("nsp"), obj.get("id"), obj.get("data")
    if type(t) is not int or not CONNECT <= t <= CONNECT_ERROR or not isinstance(nsp, str):
        return None
    anomaly = ""
    if ack_id is not None and (type(ack_id) is not int or ack_id < 0 or ack_id >= 1 << 53 or t in NO_ACK_ID_TYPES):
        ack_id, anomaly = None, SIO_BAD_ACK_ID
    event: str | None = None
    ok = True
    if t == EVENT:
        name = payload[0] if isinstance(payload, list) and payload else None
        ok = isinstance(name, (str, int, float))
        if ok:
            event = clean_text(name) if isinstance(name, str) else json.dumps(name)
            if event in RESERVED_EVENTS:
                anomaly = join_tags(anomaly, RESERVED_EVENT_NAME)
    elif t == ACK:
        ok = isinstance(payload, list)
    elif t == CONNECT:
        ok = payload is None or isinstance(payload, dict)
    elif t == DISCONNECT:
        ok = payload is None
    else:
        ok = isinstance(payload, (dict, str))
    if not ok:
        anomaly = join_tags(anomaly, SIO_BAD_PAYLOAD)
    try:
        text = "" if payload is None else json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                                                   default=_jsonable)
    except (TypeError, ValueError, RecursionError):
        text = ""
    digest = crc32(msgpack.packb(payload)) if t == EVENT and ok else None
    return MsgpackPacket(t, clean_text(nsp), ack_id, event, clean_text(text), digest, anomaly)

