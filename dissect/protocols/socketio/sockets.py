"""The life of each Socket.IO socket (table ``sio_sockets``): one client's connection to one
namespace within one Engine.IO session, from its CONNECT to why it ended.

References: socket.io-protocol v5 "Exchange protocol" (CONNECT, DISCONNECT; connection-state
recovery's ``pid``/``offset``), engine.io-protocol v4 "Heartbeat" (the server pings, the client
answers within ``pingTimeout``) and v3 (the client pings; the server gives up after
``pingInterval + pingTimeout`` without a packet), and the disconnect reasons of the socket.io server
(``lib/socket.ts``: ``DisconnectReason``).

:class:`SessionSockets` is held by one Engine.IO session's
:class:`~dissect.protocols.socketio.SocketIOState`; the Socket.IO layer tells it about CONNECTs,
their answers, EVENTs and DISCONNECTs, the Engine.IO tracker about pings, pongs and the end of the
session's transport. A socket's row goes to the outbox when it ends (DISCONNECT, the session's end)
or at the end of the analysis (``capture ended``).

The reason is inferred from the wire, in the server's words:

* c2s DISCONNECT: ``client namespace disconnect`` (client); s2c DISCONNECT: ``server namespace
  disconnect`` (server).
* A ping left unanswered for ``pingTimeout`` (v3: no client packet for ``pingInterval +
  pingTimeout``) before the session's end: ``ping timeout`` (server), at the ping + pingTimeout.
* The server ends the Engine.IO session without a DISCONNECT (an s2c close packet, a WebSocket
  Close frame from the server): ``server shutting down`` (socket.io's ``io.close()``: no DISCONNECT
  packets, ``forced close`` at the Engine.IO level).
* The client ends it without a DISCONNECT (a c2s close packet, a Close frame from the client), or
  the TCP connection under the WebSocket ends (FIN or RST, from either side) without a Close frame:
  ``transport close`` (by the side that closed first).
* Still connected when the capture stops: ``capture ended``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from dissect.records import C2S, CAPTURE_ENDED, S2C, SioSocket, ms

# Disconnect reasons, the socket.io server's words (DisconnectReason in socket.io's lib/socket.ts).
CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"
SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"
PING_TIMEOUT = "ping timeout"
TRANSPORT_CLOSE = "transport close"
TRANSPORT_ERROR = "transport error"
SERVER_SHUTTING_DOWN = "server shutting down"
DISCONNECT_REASONS = (
    CLIENT_NAMESPACE_DISCONNECT, SERVER_NAMESPACE_DISCONNECT, PING_TIMEOUT, TRANSPORT_CLOSE,
    TRANSPORT_ERROR, SERVER_SHUTTING_DOWN, CAPTURE_ENDED,
)

# Anomalies of the heartbeat (on the sio_sockets row; pong-late also on the pong's sio_packets row).
PONG_LATE = "pong-late"  # a pong came later than pingTimeout after its ping
PINGS_STOPPED = "pings-stopped"  # no ping for pingInterval + pingTimeout while the socket was open
ANOMALIES: tuple[str, ...] = (PONG_LATE, PINGS_STOPPED)

BY_NAMES = ("client", "server")  # indexed by direction: C2S -> the client did it
_YEAST = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
_YEAST_VALUE = {c: i for i, c in enumerate(_YEAST)}
MAX_SOCKETS = 256  # namespaces live per Engine.IO session (bounded like pending CONNECTs)
# Replayed events come with the CONNECT reply (socket.io 4.8: just before it); s2c EVENTs are
# read for their offset until this long after the reply, then the socket takes the fast path again.
REPLAY_WINDOW_NS = 1_000_000_000

Emit = Callable[[SioSocket], None]


def offset_time_ms(offset: str) -> int | None:
    """The time (epoch ms) a connection-state-recovery offset was made, or None when its form is
    unknown. socket.io's in-memory adapter makes offsets with ``yeast()`` (``Date.now()`` in the
    64 characters ``0-9A-Za-z-_``, ``.<n>`` appended within one ms); the Redis streams adapter uses
    stream ids ``<ms>-<seq>``."""
    head = offset.split(".", 1)[0]
    if "-" in head[1:] and head.split("-", 1)[0].isdigit():
        return int(head.split("-", 1)[0])
    if not 6 <= len(head) <= 9:
        return None
    value = 0
    for c in head:
        v = _YEAST_VALUE.get(c)
        if v is None:
            return None
        value = value * 64 + v
    return value


def _json_object(payload: bytes) -> dict[str, object] | None:
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON we read
        return None
    return value if isinstance(value, dict) else None


class SocketLife:
    """One socket: its CONNECT, its answer, what it carried, how it ended."""

    __slots__ = (
        "namespace", "session_id", "ts_request", "ts_connect", "socket_sid", "connected", "events",
        "pings", "max_pong_ms", "anomaly", "asked_pid", "asked_ms", "recovered", "replayed",
        "unanswered", "transport", "last_ping",
    )

    def __init__(self, namespace: str, session_id: int, ts_request: int) -> None:
        self.namespace = namespace
        self.session_id = session_id  # the TCP session that carried the CONNECT
        self.ts_request = ts_request
        self.ts_connect: int | None = None
        self.socket_sid: str | None = None
        self.connected: bool | None = None  # None while the CONNECT waits for its answer
        self.events = [0, 0]
        self.pings = 0
        self.max_pong_ms: float | None = None
        self.anomaly = ""
        self.asked_pid: str | None = None  # connection-state recovery: the pid the CONNECT asked for
        self.asked_ms: int | None = None  # when that CONNECT was sent (epoch ms)
        self.recovered: bool | None = None
        self.replayed: int | None = None
        self.unanswered = 0  # events of this namespace left without their ACK
        self.transport = "polling"
        self.last_ping: int | None = None  # the last ping (or the connect) while it was open

    def s2c_event(self, payload: bytes) -> None:
        """An s2c EVENT while recovery was asked: replayed when its offset (the last argument) was
        made before the reconnecting CONNECT (socket.io-protocol "Connection state recovery")."""
        if self.asked_ms is None:
            return
        try:
            args = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return
        if isinstance(args, list) and args and isinstance(args[-1], str):
            made = offset_time_ms(args[-1])
            if made is not None and made < self.asked_ms:
                self.replayed = (self.replayed or 0) + 1


class SessionSockets:
    """The sockets and the heartbeat of one Engine.IO session."""

    __slots__ = ("live", "root", "interval_ns", "timeout_ns", "client_pings", "outstanding",
                 "last_c2s", "gave_up", "pings", "ended", "slow")

    def __init__(self) -> None:
        self.live: dict[str, SocketLife] = {}
        self.root: SocketLife | None = None  # live["/"], read by the WebSocket fast path
        self.interval_ns: int | None = None
        self.timeout_ns: int | None = None
        self.client_pings = False  # Engine.IO v3: the client pings
        self.outstanding: int | None = None  # the ts of the last ping not answered yet
        self.last_c2s: int | None = None  # the last c2s packet (v3: the server's liveness timer)
        self.gave_up: int | None = None  # when the server's heartbeat gave up, once seen to
        self.pings = 0
        self.ended: list[tuple[SocketLife, int | None, str | None, str | None]] = []
        self.slow = False  # a recovery is asked: s2c EVENTs of "/" take the general path

    # -- Socket.IO packets ------------------------------------------------------------------------

    def _set(self, nsp: str, life: SocketLife | None) -> None:
        if life is None:
            self.live.pop(nsp, None)
        else:
            self.live[nsp] = life
        if nsp == "/":
            self.root = life
        self.slow = any(x.asked_ms is not None for x in self.live.values())

    def connect_request(self, nsp: str, ts: int, session_id: int, payload: bytes) -> None:
        """A c2s CONNECT (v5: with an optional auth object, which carries ``pid``/``offset`` when
        the client asks for its state back)."""
        old = self.live.get(nsp)
        if old is not None and old.connected:
            # A new CONNECT for a namespace still connected: the server replaces the socket.
            self.ended.append((old, ts, TRANSPORT_CLOSE, None))
        if len(self.live) >= MAX_SOCKETS and nsp not in self.live:
            return
        life = SocketLife(nsp, session_id, ts)
        if payload[:1] == b"{":
            auth = _json_object(payload)
            if auth is not None and isinstance(auth.get("pid"), str):
                life.asked_pid = str(auth["pid"])
                life.asked_ms = ts // 1_000_000
                life.replayed = 0
        self._set(nsp, life)

    def connect_answer(self, nsp: str, ts: int, session_id: int, payload: bytes | None,
                       ok: bool) -> None:
        """The server's CONNECT (``ok``; v5 ``{"sid","pid"}``) or CONNECT_ERROR for ``nsp``."""
        life = self.live.get(nsp)
        if life is None or life.connected is not None:
            if not ok:
                return
            life = SocketLife(nsp, session_id, ts)  # v4 protocol: "/" connected unprompted
            if len(self.live) >= MAX_SOCKETS and nsp not in self.live:
                return
        life.ts_connect = ts
        life.connected = ok
        if ok and payload and payload[:1] == b"{":
            reply = _json_object(payload)
            if reply is not None:
                if isinstance(reply.get("sid"), str):
                    life.socket_sid = str(reply["sid"])
                if life.asked_pid is not None:
                    # A recovered socket keeps its pid (and its sid); a new one gets new ones.
                    life.recovered = reply.get("pid") == life.asked_pid
        elif ok and life.asked_pid is not None:
            life.recovered = False
        if not ok:
            self.ended.append((life, None, None, None))
            self._set(nsp, None)
            return
        life.last_ping = ts
        self._set(nsp, life)

    def event(self, direction: int, nsp: str, payload: bytes, ts: int) -> None:
        life = self.live.get(nsp)
        if life is None:
            return
        life.events[direction] += 1
        if direction == S2C and life.asked_ms is not None:
            if life.ts_connect is not None and ts - life.ts_connect > REPLAY_WINDOW_NS:
                life.asked_ms = None  # the replay is over: no more offsets to read
                self._set(nsp, life)
            else:
                life.s2c_event(payload)

    def disconnect(self, direction: int, nsp: str, ts: int) -> None:
        """A DISCONNECT packet (socket.io-protocol "Disconnection from a namespace")."""
        life = self.live.get(nsp)
        if life is None:
            return
        reason = CLIENT_NAMESPACE_DISCONNECT if direction == C2S else SERVER_NAMESPACE_DISCONNECT
        self.ended.append((life, ts, reason, BY_NAMES[direction]))
        self._set(nsp, None)

    # -- Engine.IO heartbeat ----------------------------------------------------------------------

    def opened(self, interval_ms: object, timeout_ms: object, version: int | None) -> None:
        """The open packet's pingInterval / pingTimeout (ms)."""
        if isinstance(interval_ms, (int, float)) and not isinstance(interval_ms, bool):
            self.interval_ns = int(interval_ms * 1_000_000)
        if isinstance(timeout_ms, (int, float)) and not isinstance(timeout_ms, bool):
            self.timeout_ns = int(timeout_ms * 1_000_000)
        self.client_pings = version == 3

    def c2s(self, ts: int) -> None:
        """A c2s packet (general path): v3, the server's timer restarts with every packet it
        receives; a packet later than pingInterval + pingTimeout came after it gave up."""
        last = self.last_c2s
        if self.client_pings and last is not None and self.gave_up is None \
                and self.interval_ns is not None and self.timeout_ns is not None \
                and ts > last + self.interval_ns + self.timeout_ns:
            self.gave_up = last + self.interval_ns + self.timeout_ns
        self.last_c2s = ts

    def ping(self, ts: int) -> None:
        """A heartbeat ping (not an upgrade probe) from the pinging side."""
        self.pings += 1
        if self.outstanding is None:
            self.outstanding = ts
        for life in self.live.values():
            if life.connected:
                life.pings += 1
                self._gap(life, ts)
                life.last_ping = ts

    def pong(self, ts: int) -> str:
        """A heartbeat pong; returns ``pong-late`` when it came after pingTimeout."""
        sent = self.outstanding
        if sent is None:
            return ""
        self.outstanding = None
        delay = (ts - sent) / 1e6
        late = not self.client_pings and self.timeout_ns is not None and ts - sent > self.timeout_ns
        if late and self.gave_up is None:
            # v4: the server closed the session at ping + pingTimeout; this pong answers nothing.
            self.gave_up = sent + (self.timeout_ns or 0)
        for life in self.live.values():
            if life.connected:
                if late:
                    if PONG_LATE not in life.anomaly:
                        life.anomaly = _join(life.anomaly, PONG_LATE)
                elif life.max_pong_ms is None or delay > life.max_pong_ms:
                    life.max_pong_ms = delay
        return PONG_LATE if late else ""

    def _gap(self, life: SocketLife, ts: int) -> None:
        """``pings-stopped`` when more than pingInterval + pingTimeout passed without a ping."""
        if self.interval_ns is None or self.timeout_ns is None or life.last_ping is None:
            return
        if ts - life.last_ping > self.interval_ns + self.timeout_ns and PINGS_STOPPED not in life.anomaly:
            life.anomaly = _join(life.anomaly, PINGS_STOPPED)

    def timed_out(self, end: int) -> int | None:
        """When the server's heartbeat gave up on the session if it did before ``end``: v4 a ping
        unanswered for pingTimeout; v3 no client packet for pingInterval + pingTimeout."""
        if self.gave_up is not None and self.gave_up <= end:
            return self.gave_up
        if self.timeout_ns is None:
            return None
        if self.client_pings:
            if self.interval_ns is None or self.last_c2s is None:
                return None
            t = self.last_c2s + self.interval_ns + self.timeout_ns
        elif self.outstanding is not None:
            t = self.outstanding + self.timeout_ns
        else:
            return None
        return t if end >= t else None

    # -- the end ----------------------------------------------------------------------------------

    def end_all(self, ts: int | None, reason: str | None, by: str | None) -> None:
        """The Engine.IO session ended: every socket still open ends with it."""
        for nsp, life in list(self.live.items()):
            if life.connected is None:
                self.ended.append((life, None, None, None))  # never answered
            else:
                self.ended.append((life, ts, reason, by))
            self._set(nsp, None)

    def session_ended(self, ts: int, reason: str, by: str | None) -> None:
        """The session's transport ended at ``ts`` as ``reason`` says, unless the heartbeat had
        given up on it before (``ping timeout``, by the server)."""
        t = self.timed_out(ts)
        if t is not None:
            self.end_all(t, PING_TIMEOUT, "server")
        else:
            self.end_all(None if reason == CAPTURE_ENDED else ts, reason, by)

    def rows(self, eio_sid: str | None, version: int | None, transport: str, emit: Emit | None,
             pending_acks: dict[tuple[int, str, int], tuple[int, str | None]]) -> None:
        """The rows of the sockets that ended (``emit`` None: dropped, another worker reports);
        ``pending_acks``: the session's events still waiting for their ACK."""
        ended = self.ended
        self.ended = []
        if emit is None:
            return
        for life, ts_end, reason, by in ended:
            if pending_acks:
                life.unanswered = sum(1 for key in pending_acks if key[1] == life.namespace)
            if life.connected and life.last_ping is not None and ts_end is not None:
                self._gap(life, ts_end)
            emit(SioSocket(
                life.session_id, eio_sid, life.namespace, life.socket_sid, version, transport,
                life.ts_connect if life.ts_connect is not None else life.ts_request,
                ts_end, ms(life.ts_connect, ts_end), bool(life.connected), reason, by,
                life.events[C2S], life.events[S2C], life.unanswered,
                life.pings, life.max_pong_ms, life.recovered, life.replayed, life.anomaly,
            ))


def _join(a: str, b: str) -> str:
    return b if not a else a + ";" + b
