"""The state of one Engine.IO session, named by its ``sid`` (v4 "Handshake"): its version, its
transport, its Socket.IO state and the rows held while a packet's attachments arrive.

:class:`dissect.protocols.engineio.tracker.EngineIO` keeps the sessions; its transports
(polling requests, :class:`dissect.protocols.engineio.websocket.EngineIOWebSocket`) feed them.
"""

from __future__ import annotations

from dissect.protocols.socketio import SocketIOState
from dissect.records import SioPacket


class Session:
    """One Engine.IO session (one sid)."""

    __slots__ = ("sid", "version", "sio", "transport", "closed", "held", "ws", "first_tcp", "ws_born")

    def __init__(self, sid: str | None, version: int | None, sio: SocketIOState, first_tcp: int) -> None:
        self.sid = sid
        self.first_tcp = first_tcp  # the TCP session it was first seen on
        # Started on a WebSocket without sid (its connection's owner under --jobs is not the sid's)
        self.ws_born = False
        self.version = version
        self.sio = sio
        sio.protocol = None if version is None else version + 1
        self.transport = "polling"  # "websocket" once upgraded (or when it started there)
        self.closed = False
        # Rows of a BINARY_* packet and its attachments so far, per direction (None: nothing held).
        self.held: list[list[SioPacket] | None] = [None, None]
        # The EngineIOWebSocket carrying the session once upgraded (or from the start); only
        # compared by identity, so this module need not know the WebSocket transport.
        self.ws: object | None = None

    def set_version(self, version: int) -> None:
        """The version is known (``EIO=``, the payload framing or the open packet)."""
        self.version = version
        self.sio.protocol = version + 1
