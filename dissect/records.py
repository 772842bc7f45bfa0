"""Typed rows of the public report tables (the contract: docs/REPORTS.md in the source repository).

Every table row is a NamedTuple whose fields are the contract's columns, in the contract's order.
Extra columns (allowed by the contract) come after the contract's own.

Inside dissect, timestamps are integer nanoseconds since the UNIX epoch (fields ``ts*`` and
``*_ts``); the adapters at the edge (:mod:`dissect.output.tables`, the CSV writer) turn them into epoch
seconds. Durations (``*_ms``) are already float milliseconds. A missing value is ``None``.

Dissectors append rows to an :class:`Outbox`, one list per table; the pipeline drains the lists to
the writers in batches, so memory stays bounded however long the capture is.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

# Directions are small ints on the hot path; rows carry the contract's strings.
C2S = 0
S2C = 1
DIRECTION_NAMES = ("c2s", "s2c")


class Session(NamedTuple):
    """One TCP connection or UDP flow (table ``sessions``)."""

    session_id: int
    transport: str  # tcp | udp
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    client_inferred: bool
    ts_first: int
    ts_last: int
    packets_c2s: int
    packets_s2c: int
    bytes_c2s: int
    bytes_s2c: int
    app_protocol: str  # tcp|udp|http|websocket|engineio|socketio
    syn_ts: int | None
    synack_ts: int | None
    ack_ts: int | None
    tcp_handshake_ms: float | None
    client_rtt_ms: float | None
    server_rtt_ms: float | None
    retransmissions: int | None
    out_of_order: int | None
    lost_bytes: int | None
    close: str | None  # fin | rst | open (None for UDP)
    source_file: str
    # extra columns
    syn_retransmissions: int | None
    anomaly: str
    # added by the contract (the TLS issue): empty when the session is not TLS
    tls_version: str | None = None
    tls_cipher: str | None = None
    sni: str | None = None
    alpn: str | None = None
    tls_decrypted: bool | None = None
    # added by the contract (the rows-to-bytes issue)
    frame_first: int | None = None  # Wireshark's frame number of the first packet, in source_file
    tcp_stream: int | None = None  # Wireshark's tcp.stream in source_file (None for UDP)
    community_id: str | None = None  # Community ID v1, seed 0


class Handshake(NamedTuple):
    """One handshake at one layer (table ``handshakes``)."""

    session_id: int
    layer: str  # tcp | tls | websocket | engineio | socketio
    ts_start: int
    ts_end: int | None
    duration_ms: float | None
    ok: bool | None  # None: the capture ended before an answer could come
    detail: str
    transport: str | None  # websocket | polling where it applies


class HttpExchange(NamedTuple):
    """One HTTP/1.x request and its response (table ``http``)."""

    session_id: int
    ts_request: int
    ts_response: int | None
    duration_ms: float | None
    method: str
    target: str
    host: str | None
    status: int | None
    content_length: int | None
    body_bytes: int | None
    upgrade: str | None
    # extra columns
    request_body_bytes: int
    anomaly: str
    # added by the contract (the rows-to-bytes issue): Wireshark's numbers of the packets holding the
    # last byte of the request head and of the response head
    frame_request: int | None = None
    frame_response: int | None = None


class WsFrame(NamedTuple):
    """One WebSocket frame, RFC 6455 section 5.2 (table ``ws_frames``)."""

    session_id: int
    frame_index: int
    ts: int
    direction: str
    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    opcode_name: str
    masked: bool
    payload_len: int
    header_len: int
    compressed: bool
    close_code: int | None
    close_reason: str | None
    anomaly: str
    # added by the contract (the rows-to-bytes issue)
    frame: int | None = None  # Wireshark's frame number of the packet holding the frame's last byte


class WsMessage(NamedTuple):
    """One WebSocket message, RFC 6455 section 5.4/5.5 (table ``ws_messages``)."""

    session_id: int
    message_index: int
    ts_first: int
    ts_last: int
    direction: str
    opcode_name: str
    frames: int
    wire_bytes: int
    payload_bytes: int | None
    compressed: bool
    text_preview: str
    anomaly: str
    # added by the contract (the rows-to-bytes issue), only with --payloads
    payload: str | None = None  # the whole data message after decompression: text, or binary as base64


class SioPacket(NamedTuple):
    """One Engine.IO packet with its Socket.IO packet, if any (table ``sio_packets``)."""

    session_id: int
    ts: int
    direction: str
    transport: str  # websocket | polling
    eio_version: int | None  # 3 | 4
    eio_type: str
    sio_type: str
    namespace: str | None
    event: str | None
    ack_id: int | None
    attachments: int | None
    payload_bytes: int
    ack_latency_ms: float | None
    anomaly: str
    # extra columns
    eio_sid: str | None
    attachment_index: int | None = None  # on a binary attachment's row: its place among the attachments
    # added by the contract (the rows-to-bytes issue)
    frame: int | None = None  # Wireshark's frame number of the packet holding the packet's last byte
    acked_event: str | None = None  # on an ACK / BINARY_ACK row: the event name of the EVENT answered
    data: str | None = None  # only with --payloads: the packet's JSON as sent
    # dissect's (the Socket.IO issue)
    payload_digest: int | None = None  # on EVENT / BINARY_EVENT rows: CRC-32 of the event name and arguments as sent


class SioSocket(NamedTuple):
    """One Socket.IO socket: a client's connection to one namespace within one Engine.IO session,
    from its CONNECT to why it ended (table ``sio_sockets``)."""

    session_id: int  # the TCP session that carried the CONNECT
    eio_sid: str | None
    namespace: str
    socket_sid: str | None  # the sid of the server's CONNECT reply (protocol v5)
    eio_version: int | None
    transport: str  # the last one the session used: websocket | polling
    ts_connect: int  # the server's CONNECT reply (the request when it was never answered)
    ts_disconnect: int | None
    duration_ms: float | None
    connected: bool  # the CONNECT was accepted
    disconnect_reason: str | None  # the socket.io server's words
    disconnect_by: str | None  # client | server; None when unknown
    events_c2s: int
    events_s2c: int
    acks_unanswered: int
    pings: int
    max_pong_delay_ms: float | None
    recovered: bool | None  # None when no connection-state recovery was asked
    replayed_events: int | None
    # extra columns
    anomaly: str = ""


class SioBroadcast(NamedTuple):
    """One fan-out: the same server-to-client EVENT (namespace, event name and payload bytes) to
    several sockets within 1 s (table ``sio_broadcasts``; made at the end of a run from the
    ``sio_packets`` rows, by :mod:`dissect.output.broadcasts`)."""

    broadcast_index: int
    namespace: str
    event: str | None
    ts_first: int
    ts_last: int
    spread_ms: float
    recipients: int
    payload_bytes: int


TABLES: dict[str, type[tuple]] = {
    "sessions": Session,
    "handshakes": Handshake,
    "http": HttpExchange,
    "ws_frames": WsFrame,
    "ws_messages": WsMessage,
    "sio_packets": SioPacket,
    "sio_sockets": SioSocket,
    "sio_broadcasts": SioBroadcast,
}
#: The tables whose rows dissectors make, each row's first column its ``session_id``
#: (``sio_broadcasts`` is made at the end of a run from the ``sio_packets`` rows).
SESSION_TABLES = ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets", "sio_sockets")


# Text columns whose values dissect itself chooses from a fixed vocabulary: never traffic-derived,
# so writers may skip quoting and formula neutralisation for them.
VOCABULARY_COLUMNS = frozenset({
    "transport", "app_protocol", "close", "layer", "direction", "opcode_name", "eio_type",
    "sio_type", "disconnect_reason", "disconnect_by",
})


def column_types(table: type[tuple]) -> dict[str, str]:
    """Each column's type hint as text, e.g. ``{"session_id": "int", "ts_end": "int | None"}``."""
    out = {}
    for name, hint in table.__annotations__.items():
        # NamedTuple keeps postponed annotations as ForwardRef objects.
        out[name] = getattr(hint, "__forward_arg__", hint if isinstance(hint, str) else repr(hint))
    return out


def ts_columns(table: type[tuple]) -> tuple[str, ...]:
    """The columns of ``table`` that hold integer-nanosecond timestamps."""
    return tuple(
        f for f in table._fields  # type: ignore[attr-defined]
        if f.startswith("ts") or f.endswith("_ts")
    )


class Outbox:
    """Where dissectors put their rows: one plain list per table, and ``counters`` for what they
    count without a row (bytes not parsed, acks dropped...), which reach summary.json's ``decode``.

    The pipeline empties the lists (``drain``) into the writers every so often; a dissector only
    ever appends.
    """

    __slots__ = ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets", "sio_sockets",
                 "counters", "frame", "capture_end", "direct")
    TABLES = ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets", "sio_sockets")

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        # Wireshark's number of the packet being dissected (1-based in its file; the pipeline
        # sets it): rows that name "the packet holding the last byte" read it when they are made.
        self.frame = 0
        # Set when the capture has ended (the time of its last packet): what is flushed then may
        # have been cut short by the end (:func:`capture_ended`).
        self.capture_end: int | None = None
        # The compiled core's rows made without tuples (dissect/compiled/direct_rows.pxi), when the
        # pipeline's consumers all take them (Pipeline.drain hands them over); None: tuples only.
        self.direct: Any = None
        self.sessions: list[Session] = []
        self.handshakes: list[Handshake] = []
        self.http: list[HttpExchange] = []
        self.ws_frames: list[WsFrame] = []
        self.ws_messages: list[WsMessage] = []
        self.sio_packets: list[SioPacket] = []
        self.sio_sockets: list[SioSocket] = []

    def drain(self) -> dict[str, list[tuple]]:
        """Hand over every row collected so far and start empty lists."""
        out: dict[str, list[tuple]] = {}
        for name in self.TABLES:
            rows = getattr(self, name)
            if rows:
                out[name] = rows
                setattr(self, name, [])
        return out

    def pending(self) -> int:
        held = sum(len(getattr(self, n)) for n in self.TABLES)
        return held + self.direct.pending() if self.direct is not None else held


# A handshake still unanswered when the capture ends is not a failure when its request came this
# close to the end: the answer could not have come yet (TCP's initial retransmission timeout,
# RFC 6298 section 2, is 1 s). Its row has ok empty and detail "capture ended".
CAPTURE_END_GRACE_NS = 1_000_000_000
CAPTURE_ENDED = "capture ended"


def capture_ended(ts_request: int | None, capture_end: int | None) -> bool:
    """True when an unanswered request at ``ts_request`` met the end of the capture at
    ``capture_end`` before an answer could come."""
    return (capture_end is not None and ts_request is not None
            and capture_end - ts_request < CAPTURE_END_GRACE_NS)


def ms(a: int | None, b: int | None) -> float | None:
    """Milliseconds from ns timestamp ``a`` to ``b``; None when either is missing."""
    if a is None or b is None:
        return None
    return (b - a) / 1e6
