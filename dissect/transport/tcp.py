"""TCP (RFC 9293): connection state, handshake timing and per-direction stream reassembly.

A :class:`TcpConnection` is one session of the ``sessions`` table. Its two :class:`Direction` objects
rebuild each direction's byte stream from segments that may arrive out of order, retransmitted
(fully or partly), overlapping, across a sequence-number wraparound, or never (lost from the
capture). The application dissector sees only in-order bytes through ``feed`` and is told of every
hole through ``gap``, so it can resynchronise instead of stalling.

A hole is declared lost when the receiver acknowledges bytes the capture never showed (the peer
has them, so no retransmission will come), when the out-of-order buffer exceeds its bound, or when
the connection ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from dissect.capture.ip import ntop
from dissect.records import CAPTURE_ENDED, Handshake, Session, capture_ended, ms
from dissect.transport.community_id import TCP, community_id

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MASK = 0xFFFFFFFF
HALF = 0x80000000


class StreamDissector(Protocol):
    """What an application dissector offers the transport (HTTP and WebSocket implement it)."""

    def feed(self, direction: int, ts: int, data: bytes) -> None: ...
    def gap(self, direction: int, ts: int, nbytes: int) -> None: ...
    def finish(self, ts: int) -> None: ...


def replay(app: StreamDissector, trailing: Iterable[tuple[int, int, bytes | int]]) -> None:
    """Feed ``app`` what the previous dissector handed back when it stopped: ``(direction, ts,
    bytes)``, or a lost-byte count in place of bytes, in order."""
    for d, ts, item in trailing:
        if isinstance(item, int):
            app.gap(d, ts, item)
        elif item:
            app.feed(d, ts, item)


def seq_diff(a: int, b: int) -> int:
    """a - b in sequence space (RFC 9293 section 3.4), as a signed 32-bit number."""
    d = (a - b) & MASK
    return d - 0x100000000 if d & HALF else d


class Direction:
    """One direction of a connection: the next expected sequence number and segments held early."""

    __slots__ = ("next_seq", "isn", "pending", "pending_bytes", "fin_seq", "fin_done", "delivered",
                 "lost", "retrans", "ooo", "keepalives", "high")

    def __init__(self) -> None:
        self.next_seq = -1  # unknown until a SYN or the first segment
        self.isn = -1
        self.pending: dict[int, tuple[bytes, int]] = {}  # seq -> (data, ts)
        self.pending_bytes = 0
        self.fin_seq = -1
        self.fin_done = False
        self.delivered = 0
        self.lost = 0
        self.retrans = 0
        self.ooo = 0  # segments that arrived behind a later one (Wireshark's "out-of-order")
        self.keepalives = 0
        self.high = -1  # the highest sequence number seen so far (the end of the latest data)


class TcpConnection:
    """One TCP session: roles, handshake times, counters, reassembly and its app dissector."""

    __slots__ = ("session_id", "client_ip", "client_port", "server_ip", "server_port", "inferred",
                 "streams", "packets", "ts_first", "ts_last", "syn_ts", "last_syn_ts", "synack_ts",
                 "ack_ts", "syn_retrans", "close", "closed_ts", "app", "app_decided", "app_protocol",
                 "source_file", "max_pending", "anomaly", "on_first_data", "foreign", "frame_first",
                 "tcp_stream", "filtered", "app_columns", "ended")

    def __init__(self, session_id: int, client: tuple[bytes, int], server: tuple[bytes, int],
                 inferred: bool, ts: int, source_file: str, max_pending: int, frame_first: int | None = None,
                 tcp_stream: int | None = None) -> None:
        self.session_id = session_id
        self.frame_first = frame_first  # Wireshark's frame number of the first packet (source_file)
        self.tcp_stream = tcp_stream  # Wireshark's tcp.stream (source_file)
        self.client_ip, self.client_port = client
        self.server_ip, self.server_port = server
        self.inferred = inferred
        self.streams = (Direction(), Direction())  # c2s, s2c
        self.packets = [0, 0]
        self.ts_first = ts
        self.ts_last = ts
        self.syn_ts: int | None = None
        self.last_syn_ts: int | None = None
        self.synack_ts: int | None = None
        self.ack_ts: int | None = None
        self.syn_retrans = 0
        self.close = "open"
        self.closed_ts: int | None = None
        self.ended: tuple[int, int, str] | None = None  # the first FIN or RST: ts, direction, fin|rst
        # Where the next in-order bytes go: changed only by switch() (one owner of the pointer).
        self.app: StreamDissector | None = None
        self.app_decided = False
        self.app_protocol = "tcp"  # the highest layer recognised so far (sessions.app_protocol)
        self.source_file = source_file
        self.max_pending = max_pending
        self.anomaly = ""
        # Called with the first in-order payload: decides the first dissector (protocols.registry).
        self.on_first_data: Callable[[TcpConnection, int, int, bytes], None] | None = None
        # --jobs: another worker owns this session; only what numbering depends on is tracked.
        self.foreign = False
        self.filtered = False  # left out by --host/--port: tracked as a foreign flow, no row
        # Columns of the session row that a layer above knows (TLS: version, cipher, SNI, ALPN).
        self.app_columns: dict[str, object] | None = None

    # -- the application layer ------------------------------------------------------------------------

    def switch(self, app: StreamDissector | None, app_protocol: str | None = None,
               trailing: Iterable[tuple[int, int, bytes | int]] = (), anomaly: str = "") -> None:
        """Hand the connection's next bytes to ``app`` (None: nobody parses them).

        ``trailing`` is what the previous dissector held when it stopped (h11's
        ``trailing_data``): ``(direction, ts, bytes)``, or a lost-byte count instead of bytes,
        in order; it reaches ``app`` first. ``app_protocol`` names the new highest layer and
        ``anomaly`` is noted on the session row.
        """
        self.app = app
        self.app_decided = True
        self.note_layer(app_protocol, anomaly)
        if app is not None:
            replay(app, trailing)

    def note_layer(self, app_protocol: str | None, anomaly: str = "") -> None:
        """A layer carried inside this connection (the plaintext in TLS) reached ``app_protocol``."""
        if app_protocol is not None:
            self.app_protocol = app_protocol
        if anomaly:
            self.anomaly = anomaly

    def disown(self) -> None:
        """``--jobs``: another worker dissects this session; track only what numbering needs."""
        self.foreign = True
        self.app_decided = True

    # -- control segments (SYN, FIN, RST): the slow path ---------------------------------------------

    def control(self, d: int, ts: int, seq: int, ack: int, flags: int) -> None:
        """Handshake and close bookkeeping for a segment with SYN, FIN or RST set."""
        st = self.streams[d]
        if flags & SYN:
            if flags & ACK:  # SYN/ACK: the server's side (RFC 9293 section 3.5)
                if self.synack_ts is None:
                    self.synack_ts = ts
            else:
                if self.syn_ts is None:
                    self.syn_ts = ts
                else:
                    self.syn_retrans += 1
                self.last_syn_ts = ts
            if st.isn < 0:
                st.isn = seq
                st.next_seq = (seq + 1) & MASK
        if self.ended is None and flags & (FIN | RST):
            self.ended = (ts, d, "rst" if flags & RST else "fin")
        if flags & RST:
            self.close = "rst"
            if self.closed_ts is None:
                self.closed_ts = ts
        if flags & FIN and self.close != "rst":
            self.close = "fin"

    def fin(self, d: int, seq_end: int) -> None:
        """A FIN at ``seq_end`` (after its data) takes one sequence number once reached in order."""
        st = self.streams[d]
        if st.fin_seq < 0:
            st.fin_seq = seq_end
        if st.next_seq == st.fin_seq and not st.fin_done:
            st.fin_done = True
            st.next_seq = (st.next_seq + 1) & MASK

    @property
    def finished(self) -> bool:
        """Both FINs done, or reset: a new SYN on this 5-tuple is a new session."""
        return self.close == "rst" or (self.streams[0].fin_done and self.streams[1].fin_done)

    # -- data: the hot path ---------------------------------------------------------------------------

    def data(self, d: int, ts: int, seq: int, payload: bytes) -> None:
        """Place ``payload`` at ``seq`` in direction ``d`` and deliver what became contiguous."""
        st = self.streams[d]
        n = len(payload)
        if st.next_seq < 0:  # capture started mid-connection
            st.next_seq = seq
        rel = (seq - st.next_seq) & MASK
        if rel == 0:
            st.next_seq = (seq + n) & MASK
            st.delivered += n
            app = self.app
            if app is not None:
                app.feed(d, ts, payload)
            elif not self.app_decided:
                self._first_data(d, ts, payload)
            if st.pending:
                st.ooo += 1  # it fills a hole that later segments had already passed
                self._drain(d, st, ts)
            else:
                st.high = st.next_seq  # nothing held: this is the furthest data seen
            return
        if rel & HALF:  # before next_seq: retransmission, keep-alive or overlap
            rel -= 0x100000000
            if rel + n <= 0:
                if rel == -1 and n <= 1:
                    st.keepalives += 1  # RFC 9293 3.8.4: seq = next - 1 with 0 or 1 byte
                else:
                    st.retrans += 1
                return
            st.retrans += 1
            self.data(d, ts, st.next_seq, payload[-rel:])
            return
        # After a hole: hold it until the hole fills or is declared lost.
        end = (seq + n) & MASK
        if st.high >= 0 and seq_diff(seq, st.high) < 0:
            st.ooo += 1  # behind a segment already seen
        if st.high < 0 or seq_diff(end, st.high) > 0:
            st.high = end
        old = st.pending.get(seq)
        if old is None or len(old[0]) < n:
            st.pending_bytes += n - (len(old[0]) if old else 0)
            st.pending[seq] = (payload, ts)
        if st.pending_bytes > self.max_pending:
            self.skip_hole(d, ts)

    def _drain(self, d: int, st: Direction, ts: int) -> None:
        pending = st.pending
        while pending:
            seg = pending.pop(st.next_seq, None)
            if seg is None:
                # An overlapping segment that starts before next_seq, if any.
                for s in list(pending):
                    rel = seq_diff(s, st.next_seq)
                    if rel < 0:
                        held, _ = pending.pop(s)
                        st.pending_bytes -= len(held)
                        if rel + len(held) > 0:
                            seg = (held[-rel:], ts)
                            break
                if seg is None:
                    break
            else:
                st.pending_bytes -= len(seg[0])
            data = seg[0]
            st.next_seq = (st.next_seq + len(data)) & MASK
            st.delivered += len(data)
            if self.app is not None:
                self.app.feed(d, ts, data)
            elif not self.app_decided:
                self._first_data(d, ts, data)
        if not pending:
            st.pending_bytes = 0
        if st.fin_seq >= 0 and not st.fin_done and st.next_seq == st.fin_seq:
            st.fin_done = True
            st.next_seq = (st.next_seq + 1) & MASK

    def acked(self, d: int, ts: int, ack: int) -> None:
        """The peer acknowledged ``ack`` in direction ``d``: bytes before it that the capture never
        showed were lost from the capture (the peer has them), so skip the hole now."""
        st = self.streams[d]
        if st.next_seq < 0:
            return
        if seq_diff(ack, st.next_seq) <= 0:
            return
        if st.fin_seq >= 0 and ack == ((st.fin_seq + 1) & MASK) and st.next_seq == st.fin_seq:
            return  # only the FIN's sequence number
        self.skip_hole(d, ts, ack)

    def skip_hole(self, d: int, ts: int, upto: int | None = None) -> None:
        """Declare the bytes from next_seq to the first held segment (or ``upto``) lost."""
        st = self.streams[d]
        target = upto
        if st.pending:
            first = min(st.pending, key=lambda s: seq_diff(s, st.next_seq))
            if target is None or seq_diff(first, target) < 0:
                target = first
        if target is None:
            return
        hole = seq_diff(target, st.next_seq)
        if hole <= 0:
            return
        if st.fin_seq >= 0 and not st.fin_done and seq_diff(target, st.fin_seq) > 0:
            hole -= 1  # the FIN's sequence number is not a byte
            st.fin_done = True
        st.lost += hole
        st.next_seq = target
        if self.app is not None:
            self.app.gap(d, ts, hole)
        self._drain(d, st, ts)

    def _first_data(self, d: int, ts: int, data: bytes) -> None:
        self.app_decided = True
        if self.on_first_data is not None:
            self.on_first_data(self, d, ts, data)

    # -- end -----------------------------------------------------------------------------------------

    def finish(self, ts: int) -> None:
        """End of the capture or eviction: whatever is still held lies behind lost bytes."""
        for d in (0, 1):
            st = self.streams[d]
            while st.pending:
                before = len(st.pending)
                self.skip_hole(d, ts)
                if len(st.pending) == before:  # cannot happen after _drain; never loop forever
                    st.pending.clear()
                    st.pending_bytes = 0
        app = self.app
        if app is not None:
            ended = getattr(app, "transport_ended", None)  # optional: a layer that wants FIN / RST
            if ended is not None and self.ended is not None:
                ended(*self.ended)
            app.finish(ts)
            self.app = None
            columns = getattr(app, "session_columns", None)  # a layer that adds columns (TLS)
            if columns is not None:
                self.app_columns = columns()
                more = app.session_anomaly()  # type: ignore[attr-defined]
                if more:
                    self.anomaly = ";".join(a for a in (self.anomaly, more) if a)

    def session_row(self, app_protocol: str | None = None) -> Session:
        c, s = self.streams
        return Session(
            self.session_id, "tcp", ntop(self.client_ip), self.client_port, ntop(self.server_ip),
            self.server_port, self.inferred, self.ts_first, self.ts_last, self.packets[0],
            self.packets[1], c.delivered, s.delivered, app_protocol or self.app_protocol, self.syn_ts,
            self.synack_ts, self.ack_ts, ms(self.syn_ts, self.ack_ts), ms(self.synack_ts, self.ack_ts),
            ms(self.last_syn_ts, self.synack_ts), c.retrans + s.retrans, c.ooo + s.ooo,
            c.lost + s.lost, self.close, self.source_file, self.syn_retrans, self.anomaly,
            frame_first=self.frame_first, tcp_stream=self.tcp_stream, **(self.app_columns or {}),  # type: ignore[arg-type]
            community_id=community_id(self.client_ip, self.client_port, self.server_ip, self.server_port, TCP),
        )

    def handshake_row(self, capture_end: int | None = None) -> Handshake | None:
        """The ``tcp`` layer row of ``handshakes``, when the SYN was captured. ``capture_end``: the
        capture ended at this time with the connection still in the table; an unanswered
        handshake that was still waiting for its answer then (:func:`dissect.records.capture_ended`)
        has ok empty instead of false."""
        if self.syn_ts is None:
            return None
        ok: bool | None = self.ack_ts is not None
        detail = "" if ok else ("no SYN/ACK" if self.synack_ts is None else "no final ACK")
        end = self.ack_ts if ok else self.synack_ts
        if not ok and self.close == "open":
            waiting = self.last_syn_ts if self.synack_ts is None else self.synack_ts
            if capture_ended(waiting, capture_end):
                ok, detail = None, f"{detail}: {CAPTURE_ENDED}"
        return Handshake(self.session_id, "tcp", self.syn_ts, end, ms(self.syn_ts, end), ok, detail,
                         None)
