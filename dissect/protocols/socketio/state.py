"""The Socket.IO state of one Engine.IO session (:class:`SocketIOState`): namespaces being connected, acks
waiting for their answer, attachments still expected; :mod:`dissect.protocols.engineio` feeds it one message
at a time and turns each :class:`SioResult` into a ``sio_packets`` row."""

from __future__ import annotations

from typing import NamedTuple
from zlib import crc32

from dissect.protocols.socketio.msgpack_parser import MsgpackPacket, looks_like_msgpack_map, msgpack_packet
from dissect.protocols.socketio.packets import (
    ACK,
    ACK_ID_REUSED,
    ACK_WITHOUT_EVENT,
    ATTACHMENT_UNEXPECTED,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    CONNECT_UNSOLICITED,
    CUSTOM_PARSER,
    DISCONNECT,
    EVENT,
    MAX_PENDING_ACKS,
    MAX_PENDING_CONNECTS,
    MODE_CUSTOM,
    MODE_EIO,
    MODE_MSGPACK,
    MODE_SIO,
    MODE_UNKNOWN,
    NO_ACK_ID_TYPES,
    SIO_TYPE_NAMES,
    SIO_WRONG_DIRECTION,
    connect_error_message,
    join_tags,
    parse_header,
)
from dissect.protocols.socketio.sockets import SessionSockets
from dissect.records import C2S, CAPTURE_ENDED, S2C, Handshake, Outbox, capture_ended, ms


class SioResult(NamedTuple):
    """What one Engine.IO message contributes to its ``sio_packets`` row."""

    sio_type: str
    namespace: str | None
    event: str | None
    ack_id: int | None
    attachments: int | None
    ack_latency_ms: float | None
    anomaly: str
    attachment_index: int | None  # set on an attachment's row: its "num" in the placeholders
    group: int  # GROUP_* below: how the row relates to a BINARY_* packet and its attachments
    broken: bool  # attachments were still expected in this direction: that group is cut short
    acked_event: str | None = None  # on an ACK: the event name of the EVENT it answers
    data: str | None = None  # --payloads: the packet's JSON as sent
    digest: int | None = None  # EVENT / BINARY_EVENT: CRC-32 of the payload (event name and arguments)


GROUP_NONE = 0
GROUP_START = 1  # a BINARY_EVENT / BINARY_ACK announcing attachments
GROUP_MORE = 2  # an attachment, more to come
GROUP_END = 3  # the last attachment

_PendingConnect = tuple[int, int, str]  # ts, TCP session id, transport


class SocketIOState:
    """Socket.IO state of one Engine.IO session (both directions, every transport it used).

    ``protocol`` is 5 on Engine.IO 4 and 4 on Engine.IO 3 (socket.io-protocol "History"). Rows are
    not built here; handshakes are: one ``socketio`` row per namespace connection, appended to the
    outbox when the server answers (or when :meth:`close` gives up on it).
    """

    __slots__ = (
        "outbox",
        "payloads",
        "counters",
        "protocol",
        "mode",
        "open_ts",
        "pending_acks",
        "pending_connects",
        "expect",
        "att_index",
        "att_nsp",
        "sockets",
    )

    def __init__(self, outbox: Outbox, mode: int = MODE_UNKNOWN, payloads: bool = False) -> None:
        self.outbox = outbox
        self.payloads = payloads  # --payloads: results carry the packet's JSON
        self.counters: dict[str, int] = {}  # this session's: sio-acks-dropped, sio-acks-unanswered
        self.protocol: int | None = None
        self.mode = mode
        self.open_ts: int | None = None  # Engine.IO open packet: start of v4's implicit "/" connect
        self.pending_acks: dict[tuple[int, str, int], tuple[int, str | None]] = {}  # -> (ts, event)
        self.pending_connects: dict[str, _PendingConnect] = {}
        self.expect = [0, 0]  # attachments still expected, per direction
        self.att_index = [0, 0]
        self.att_nsp = ["/", "/"]
        self.sockets = SessionSockets()  # each namespace's socket: the sio_sockets rows

    # -- messages -------------------------------------------------------------------------------

    def text(
        self, direction: int, ts: int, data: bytes, start: int, session_id: int, transport: str
    ) -> SioResult | None:
        """A text Engine.IO message ``data[start:]``; None when the session is not Socket.IO."""
        mode = self.mode
        if mode == MODE_EIO:
            return None
        broken = False
        if self.expect[direction]:
            # socket.io-parser: "got plaintext data when reconstructing a packet".
            broken = True
            self.expect[direction] = 0
        v5 = self.protocol != 4
        h = parse_header(data, start, v5)
        if mode == MODE_UNKNOWN:
            # Decide on the first text message: a plain Engine.IO message such as "4hello" is not
            # a valid Socket.IO packet; "4123" would be (DISCONNECT, ack id 23): no ack id there.
            if h.anomaly or (h.ack_id is not None and h.type in NO_ACK_ID_TYPES):
                self.mode = MODE_EIO
                return None
            self.mode = MODE_SIO
        t = h.type
        if t < 0:
            return SioResult("", None, None, None, None, None, h.anomaly, None, GROUP_NONE, broken)
        payload = data[h.payload_start :]
        return self.packet(direction, ts, session_id, transport, t, h.namespace, h.ack_id, h.event, h.attachments,
                           payload, h.anomaly, broken,
                           payload.decode("utf-8", "replace") if self.payloads and payload else None)

    def packet(
        self, direction: int, ts: int, session_id: int, transport: str, t: int, nsp: str, ack_id: int | None,
        event: str | None, attachments: int | None, payload: bytes, anomaly: str, broken: bool,
        text: str | None, digest: int | None = None,
    ) -> SioResult:
        """One decoded Socket.IO packet of type ``t`` (whichever parser decoded it): acks,
        handshakes and sockets followed; its row's Socket.IO part. ``payload`` is the packet's
        JSON payload (``["event", ...args]`` for an EVENT) as the sockets read it; ``digest`` its
        CRC-32 when not that of ``payload``."""
        latency: float | None = None
        acked: str | None = None
        if t != EVENT and t != BINARY_EVENT:
            digest = None
        group = GROUP_NONE
        if t == EVENT or t == BINARY_EVENT:
            if ack_id is not None:
                anomaly = join_tags(anomaly, self.event_sent(direction, nsp, ack_id, ts, event))
            if digest is None:
                digest = crc32(payload)
            self.sockets.event(direction, nsp, payload, ts)
        elif t == ACK or t == BINARY_ACK:
            answered = self.ack_received(direction, nsp, ack_id, ts)
            if answered is None:
                anomaly = join_tags(anomaly, ACK_WITHOUT_EVENT)
            else:
                latency, acked = answered
        elif t == CONNECT:
            anomaly = join_tags(anomaly, self._connect(direction, ts, nsp, session_id, transport))
            if direction == C2S:
                self.sockets.connect_request(nsp, ts, session_id, payload)
            else:
                self.sockets.connect_answer(nsp, ts, session_id, payload, True)
        elif t == CONNECT_ERROR:
            if direction == C2S:
                anomaly = join_tags(anomaly, SIO_WRONG_DIRECTION)
            else:
                reason = connect_error_message(payload)
                anomaly = join_tags(
                    anomaly, self._answer(ts, nsp, session_id, transport, reason)
                )
                self.sockets.connect_answer(nsp, ts, session_id, None, False)
        elif t == DISCONNECT:
            self.sockets.disconnect(direction, nsp, ts)
        if attachments is not None:
            self.expect[direction] = attachments
            self.att_index[direction] = 0
            self.att_nsp[direction] = nsp
            group = GROUP_START
        return SioResult(
            SIO_TYPE_NAMES[t], nsp, event, ack_id, attachments, latency, anomaly, None, group, broken, acked,
            text, digest,
        )

    def event_sent(self, direction: int, nsp: str, ack_id: int, ts: int, event: str | None) -> str:
        """An EVENT asking for an ack (socket.io-protocol "Acknowledgement"): remember when it was
        sent and its name; ``ack-id-reused`` when the same id is still waiting for its ACK."""
        key = (direction, nsp, ack_id)
        acks = self.pending_acks
        anomaly = ""
        if key in acks:
            anomaly = ACK_ID_REUSED
            del acks[key]
        elif len(acks) >= MAX_PENDING_ACKS:
            del acks[next(iter(acks))]
            self.counters["sio-acks-dropped"] = self.counters.get("sio-acks-dropped", 0) + 1
        acks[key] = (ts, event)
        return anomaly

    def ack_received(self, direction: int, nsp: str, ack_id: int | None,
                     ts: int) -> tuple[float, str | None] | None:
        """An ACK: the latency in ms since the EVENT it answers and that EVENT's name; None when
        no EVENT waits for it."""
        if ack_id is None:
            return None
        sent = self.pending_acks.pop((1 - direction, nsp, ack_id), None)
        return None if sent is None else ((ts - sent[0]) / 1e6, sent[1])

    def binary(self, direction: int, data: bytes, start: int = 0, ts: int = 0, session_id: int = 0,
               transport: str = "websocket") -> SioResult | None:
        """A binary Engine.IO message ``data[start:]``: an attachment, or a custom parser's packet.

        None when the session is not (or not yet known to be) Socket.IO.
        """
        mode = self.mode
        if mode == MODE_EIO:
            return None
        left = self.expect[direction]
        if left:
            index = self.att_index[direction]
            self.att_index[direction] = index + 1
            self.expect[direction] = left - 1
            return SioResult(
                "",
                self.att_nsp[direction],
                None,
                None,
                None,
                None,
                "",
                index,
                GROUP_END if left == 1 else GROUP_MORE,
                False,
            )
        if mode == MODE_CUSTOM or mode == MODE_MSGPACK or looks_like_msgpack_map(data, start):
            decoded = msgpack_packet(data, start) if mode != MODE_CUSTOM else None
            if decoded is None and mode == MODE_MSGPACK:  # damaged, in a msgpack-parser session
                return SioResult("", None, None, None, None, None, CUSTOM_PARSER, None, GROUP_NONE, False)
            if decoded is None:
                # not socket.io-msgpack-parser's: another custom parser, reported, never guessed at
                self.mode = MODE_CUSTOM
                return SioResult(
                    "", None, None, None, None, None, CUSTOM_PARSER, None, GROUP_NONE, False
                )
            self.mode = MODE_MSGPACK
            return self.msgpack(direction, ts, session_id, transport, decoded)
        if mode == MODE_UNKNOWN:
            # The default parser sends binary only as attachments: this is not (yet) Socket.IO.
            return None
        return SioResult(
            "", None, None, None, None, None, ATTACHMENT_UNEXPECTED, None, GROUP_NONE, False
        )

    def msgpack(self, direction: int, ts: int, session_id: int, transport: str, p: MsgpackPacket) -> SioResult:
        """A packet of socket.io-msgpack-parser, decoded: the same row as the default parser's."""
        payload = p.json.encode("utf-8")
        return self.packet(direction, ts, session_id, transport, p.type, p.namespace, p.ack_id, p.event, None,
                           payload, p.anomaly, False, p.json if self.payloads and p.json else None, p.digest)

    def abandon_attachments(self, direction: int) -> None:
        """Stop expecting attachments in ``direction`` (the caller flagged the group as cut)."""
        self.expect[direction] = 0

    # -- handshakes -----------------------------------------------------------------------------

    def _connect(self, direction: int, ts: int, nsp: str, session_id: int, transport: str) -> str:
        if direction == C2S:
            pending = self.pending_connects
            pending.pop(nsp, None)
            if len(pending) >= MAX_PENDING_CONNECTS:
                del pending[next(iter(pending))]
            pending[nsp] = (ts, session_id, transport)
            return ""
        return self._answer(ts, nsp, session_id, transport, None)

    def _answer(
        self, ts: int, nsp: str, session_id: int, transport: str, error: str | None
    ) -> str:
        """The server's CONNECT (error None) or CONNECT_ERROR for ``nsp``: one handshake row."""
        pending = self.pending_connects.pop(nsp, None)
        if pending is not None:
            ts_start = pending[0]
        elif self.protocol == 4 and nsp == "/":
            # Protocol v4 "Connection to the default namespace": the server connects "/" without
            # being asked, as soon as the Engine.IO session is open.
            ts_start = self.open_ts if self.open_ts is not None else ts
        else:
            return CONNECT_UNSOLICITED
        detail = f"namespace={nsp}" if error is None else f"namespace={nsp} error={error}"
        self.outbox.handshakes.append(
            Handshake(
                session_id, "socketio", ts_start, ts, ms(ts_start, ts), error is None, detail,
                transport,
            )
        )
        return ""

    def close(self) -> None:
        """The Engine.IO session ended (close packet, end of the WebSocket, end of the analysis).

        CONNECTs never answered become failed handshakes (ok empty, "capture ended", when the
        capture's end cut them short); events still waiting for their ACK are counted
        (``sio-acks-unanswered``).
        """
        for nsp, (ts, session_id, transport) in self.pending_connects.items():
            cut = capture_ended(ts, self.outbox.capture_end)
            self.outbox.handshakes.append(
                Handshake(
                    session_id, "socketio", ts, None, None, None if cut else False,
                    f"namespace={nsp} {CAPTURE_ENDED if cut else 'error=no-response'}", transport,
                )
            )
        self.pending_connects.clear()
        if self.pending_acks:
            c = self.counters
            c["sio-acks-unanswered"] = c.get("sio-acks-unanswered", 0) + len(self.pending_acks)
            self.pending_acks.clear()
        self.expect[C2S] = self.expect[S2C] = 0
