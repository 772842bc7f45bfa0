"""Engine.IO request-targets: the query parameters that name the protocol version (``EIO``), the
transport and the session (``sid``), v4 "Transports" / "Query parameters" (v3: same names).

The query is traffic: only :func:`request_query` reads its text; what reaches a row is one of a
fixed set of values (:func:`transport_of`, :func:`eio_version`).
"""

from __future__ import annotations

from urllib.parse import unquote

from dissect.protocols.socketio import MODE_SIO, MODE_UNKNOWN


def request_query(target: str) -> dict[str, str]:
    """The query parameters of a request-target (first occurrence of each name wins)."""
    q = target.partition("?")[2].partition("#")[0]
    out: dict[str, str] = {}
    if not q:
        return out
    for field in q.split("&"):
        key, _, value = field.partition("=")
        if key not in out:
            out[key] = unquote(value) if "%" in value else value
    return out


def is_engineio_target(target: str) -> bool:
    """A request-target with an ``EIO=`` query parameter (v4 "Query parameters": mandatory)."""
    return "EIO=" in target and "EIO" in request_query(target)


def transport_of(q: dict[str, str]) -> str:
    """The transport a request names, as one of the table's two values (the query is traffic:
    its text never reaches a row)."""
    return "websocket" if q.get("transport") == "websocket" else "polling"


def eio_version(q: dict[str, str]) -> int | None:
    """The Engine.IO protocol version a request names (``EIO=4`` or ``EIO=3``), None otherwise."""
    v = q.get("EIO")
    if v == "4":
        return 4
    if v == "3":
        return 3
    return None


def path_mode(target: str) -> int:
    """The Socket.IO mode a session starts in (:data:`dissect.protocols.socketio.MODE_SIO` or
    ``MODE_UNKNOWN``), from the request-target's path."""
    # The Socket.IO path is /socket.io/ unless configured otherwise: a strong hint. Elsewhere the
    # first message decides (socketio.SocketIOState.text).
    return MODE_SIO if "socket.io" in target.partition("?")[0] else MODE_UNKNOWN
