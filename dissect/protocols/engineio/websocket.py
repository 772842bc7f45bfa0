"""The WebSocket transport of an Engine.IO session (v4 "Transports / WebSocket", "Upgrade"; v3
"Transport upgrading"): one Engine.IO packet per WebSocket message.

:meth:`EngineIOWebSocket.ws_message` is on the per-message hot path: the commonest Socket.IO
packets (an EVENT or ACK on "/") take a fast path (switch :data:`dissect.fastpaths.SIO_EVENT_HEADER`)
that makes the row the general path (:meth:`SessionTracker.packet`) would make.
"""

from __future__ import annotations

from typing import Protocol
from zlib import crc32

from dissect import fastpaths
from dissect.protocols.engineio.packets import (
    MESSAGE,
    WS_UNDECODABLE,
    DecodedPacket,
    text_packet,
    v3_binary_packet,
)
from dissect.protocols.engineio.session import Session
from dissect.protocols.socketio import (
    ACK_ID_REUSED,
    ACK_WITHOUT_EVENT,
    DIGITS,
    MAX_ACK_ID_DIGITS,
    MODE_SIO,
    RESERVED_EVENT_NAME,
    RESERVED_EVENTS,
    SocketIOState,
    join_tags,
)
from dissect.protocols.socketio.packets import MAX_PENDING_ACKS
from dissect.protocols.socketio.sockets import (
    BY_NAMES,
    SERVER_SHUTTING_DOWN,
    TRANSPORT_CLOSE,
    TRANSPORT_ERROR,
    SessionSockets,
    SocketLife,
)
from dissect.records import CAPTURE_ENDED, DIRECTION_NAMES, S2C, Outbox, SioPacket

# A NamedTuple row without the Python-level __new__ (the field count is fixed by the code).
_new_row = tuple.__new__
_core = fastpaths.compiled_core()


class SessionTracker(Protocol):
    """What a WebSocket transport needs from the tracker of every session
    (:class:`dissect.protocols.engineio.tracker.EngineIO`)."""

    app_protocols: dict[int, str]
    outbox: Outbox
    payloads: bool

    def packet(
        self, sess: Session, tcp: int, d: int, ts: int, transport: str, pkt: DecodedPacket,
        ws: EngineIOWebSocket | None, hs_start: int | None,
    ) -> bool: ...

    def handshake_failed(
        self, tcp: int, ts_start: int, ts: int | None, transport: str, version: int | None, why: str
    ) -> None: ...

    def end_session(self, sess: Session) -> None: ...

    def stop_waiting(self, ws: EngineIOWebSocket) -> None: ...


# Close codes a server's WebSocket sends when what it received broke the protocol (RFC 6455 section
# 7.4.1: 1002 protocol error, 1007 invalid payload data, 1009 message too big): engine.io's WebSocket
# transport then reports an error, and socket.io ends the socket with "transport error".
TRANSPORT_ERROR_CODES = frozenset({1002, 1007, 1009})


class EngineIOWebSocket:
    """The WebSocket transport of one Engine.IO session, on one TCP connection.

    v4 "WebSocket": one Engine.IO packet per message. Binary messages: v4 the raw data of a
    message packet; v3 (v3 "Packet") the first byte is the packet type.
    """

    __slots__ = ("_eio", "_sess", "_tcp", "_hs_start", "probed", "_level", "_fast", "compiled_scan")

    def __init__(
        self, eio: SessionTracker, sess: Session, session_id: int, hs_start: int | None
    ) -> None:
        self._eio = eio
        self._sess = sess
        self._tcp = session_id
        self._hs_start = hs_start  # ts of the GET when this WebSocket is the session's handshake
        self.probed = False  # s2c "3probe" seen (v4 "Upgrade")
        self._level = False  # this connection's app level set to "socketio" by the fast path
        self._fast = fastpaths.SIO_EVENT_HEADER  # the fast path's switch, read once
        # Its compiled twin (fastpaths.COMPILED_SIO_SCAN): the compiled WebSocket whole-frame path
        # makes the fast path's rows itself, reading this object's state, and calls ws_message
        # only for what it does not take.
        self.compiled_scan = self._fast and fastpaths.COMPILED_SIO_SCAN and _core is not None

    def ws_message(self, direction: int, ts: int, opcode: int, payload: bytes | None) -> None:
        """One complete WebSocket data message: opcode 1 text (UTF-8 bytes) or 2 binary.

        ``payload`` None: the WebSocket layer could not decode the message (a row says so).

        The commonest packets, an EVENT or ACK on "/" (``42["name",...``, ``421["name",...``,
        ``431[...``) in a Socket.IO session with nothing held or expected, take a fast path
        first (inline: a call per message is measurable): the row the general path
        (SessionTracker.packet + SocketIOState.text) makes, without its intermediate tuples.
        Anything else falls through to the general path. Its switch is read at construction.
        """
        sess = self._sess
        sio = sess.sio
        sockets = sio.sockets
        if self._fast and opcode == 1 and payload is not None and payload[:1] == b"4" \
                and not sess.closed and sio.mode == MODE_SIO and not sio.expect[direction] \
                and sess.held[direction] is None and not sockets.slow:
            t = payload[1:2]
            i = 2
            ack_id = None
            if b"0" <= payload[2:3] <= b"9":
                i = DIGITS.match(payload, 2).end()  # type: ignore[union-attr]  # always matches
                ack_id = int(payload[2:i]) if i - 2 <= MAX_ACK_ID_DIGITS else -1
            sio_type = ""
            acked: str | None = None
            if payload[i : i + 1] == b"[" and ack_id != -1:
                if t == b"2":
                    q = payload.find(b'"', i + 2)
                    # (escapes: JSON decoding on the general path)
                    if payload[i + 1 : i + 2] == b'"' and q >= 0 and payload.find(b"\\", i + 2, q) < 0:
                        name: str | None = payload[i + 2 : q].decode("utf-8", "replace")
                        sio_type = "EVENT"
                        latency = None
                        anomaly = RESERVED_EVENT_NAME if sio.protocol != 4 and name in RESERVED_EVENTS else ""
                        if ack_id is not None:
                            anomaly = join_tags(anomaly, sio.event_sent(direction, "/", ack_id, ts, name))
                elif t == b"3":
                    name = None
                    sio_type = "ACK"
                    answered = sio.ack_received(direction, "/", ack_id, ts)
                    if answered is None:
                        latency, acked, anomaly = None, None, ACK_WITHOUT_EVENT
                    else:
                        (latency, acked), anomaly = answered, ""
            if sio_type:
                if direction != S2C:
                    sockets.last_c2s = ts
                if name is not None and sockets.root is not None:
                    sockets.root.events[direction] += 1
                tcp = self._tcp
                eio = self._eio
                if not self._level:
                    eio.app_protocols[tcp] = "socketio"
                    self._level = True
                eio.outbox.sio_packets.append(_new_row(SioPacket, (
                    tcp, ts, DIRECTION_NAMES[direction], "websocket", sess.version, "message", sio_type,
                    "/", name, ack_id, None, len(payload) - 1, latency, anomaly, sess.sid, None,
                    eio.outbox.frame, acked, payload[i:].decode("utf-8", "replace") if eio.payloads else None,
                    crc32(payload[i:]) if name is not None else None,
                )))
                return
        pkt: DecodedPacket
        if payload is None:
            pkt = (-1, b"", 0, opcode == 2, 0, WS_UNDECODABLE)
            if opcode == 2 and sio.expect[direction]:
                # Most likely the attachment that was expected: count it as one.
                pkt = (MESSAGE, b"", 0, True, 0, WS_UNDECODABLE)
        elif opcode == 2:
            if sess.version == 3:
                pkt = v3_binary_packet(payload)
            else:
                pkt = (MESSAGE, payload, 0, True, len(payload), "")
        else:
            pkt = text_packet(payload, sess.version)
        hs_start = self._hs_start
        if self._eio.packet(sess, self._tcp, direction, ts, "websocket", pkt, self, hs_start):
            if hs_start is not None and direction == S2C:
                self._hs_start = None
                self._eio.stop_waiting(self)

    def give_up(self) -> None:
        """No open packet came (the WebSocket closed, or the analysis ended): the WebSocket-only
        handshake failed."""
        if self._hs_start is not None:
            self._eio.handshake_failed(
                self._tcp, self._hs_start, None, "websocket", self._sess.version,
                "error=no-response",
            )
            self._hs_start = None
        self._eio.stop_waiting(self)

    def ws_closed(
        self, ts: int, close: tuple[int, int, int | None] | None = None,
        transport_end: tuple[int, int, str] | None = None,
    ) -> None:
        """Optional: the WebSocket (or its TCP connection) ended; ``ts`` is when the WebSocket
        layer learnt it (the connection's end, or the end of the analysis).

        ``close``: (ts, direction, close code) of the first Close frame (RFC 6455 section 5.5.1);
        ``transport_end``: (ts, direction, ``fin`` | ``rst``) of the first FIN or RST under it,
        when the transport reported one. When this WebSocket carried the session (WebSocket-only,
        or after the upgrade) the session ends with it, and so do its sockets: a Close frame from
        the server first is ``server shutting down`` (no DISCONNECT came: io.close(); ``transport error``
        when its code says the server's WebSocket failed on what it received), from the
        client ``transport close``; a FIN or RST without a Close frame is ``transport close`` by
        the side that sent it; neither, at the end of the capture, ``capture ended``. A probe
        WebSocket whose upgrade never completed leaves the session alone. Without this call the
        same happens at the tracker's ``finish``.
        """
        self.give_up()
        sess = self._sess
        if sess.ws is self and not sess.closed:
            sockets = sess.sio.sockets
            if sockets.live:
                if close is not None and (transport_end is None or close[0] <= transport_end[0]):
                    when, d, code = close
                    if d == S2C and code in TRANSPORT_ERROR_CODES:
                        reason = TRANSPORT_ERROR  # the server's WebSocket failed on what it received
                    else:
                        reason = SERVER_SHUTTING_DOWN if d == S2C else TRANSPORT_CLOSE
                    sockets.session_ended(when, reason, BY_NAMES[d])
                elif transport_end is not None:
                    sockets.session_ended(transport_end[0], TRANSPORT_CLOSE, BY_NAMES[transport_end[1]])
                elif self._eio.outbox.capture_end is not None:
                    sockets.session_ended(self._eio.outbox.capture_end, CAPTURE_ENDED, None)
                else:  # the connection ended, how is not known (e.g. under TLS)
                    sockets.session_ended(ts, TRANSPORT_CLOSE, None)
            self._eio.end_session(sess)


def configure_compiled(tracker: type) -> None:
    """Hand the compiled core (when in use) what its twin of ws_message's fast path reads: the
    classes whose slots it reads in place and the constants it writes (``tracker`` is the
    EngineIO class, which imports this module)."""
    if _core is not None:
        _core.configure_sio(EngineIOWebSocket, tracker, Session, SocketIOState, SessionSockets, SocketLife, Outbox,
                            SioPacket, DIRECTION_NAMES, S2C, MODE_SIO, RESERVED_EVENTS, RESERVED_EVENT_NAME,
                            ACK_WITHOUT_EVENT, MAX_ACK_ID_DIGITS)
        _core.configure_acks(SocketIOState, ACK_ID_REUSED, MAX_PENDING_ACKS)
