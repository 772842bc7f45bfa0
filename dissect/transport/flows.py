"""The flow table: TCP connections and UDP flows by 5-tuple, their roles, and their eviction.

Every flow is registered under both directional keys (``src + dst + sport + dport`` as raw bytes),
mapping to ``(flow, direction)``, so a packet costs one dict lookup. Roles follow
docs/REPORTS.md: the client sent the first SYN; without a SYN the SYN/ACK tells; failing that,
the side with the higher (ephemeral) port is the client and ``client_inferred`` is true.

Memory stays bounded: closed connections leave the table a while after they close, idle ones after
``idle_timeout``, and past ``max_flows`` the longest-idle flows are flushed (counted in
``evicted``). A flushed flow writes its session row at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dissect.capture.ip import ntop
from dissect.records import Outbox, Session
from dissect.transport.community_id import UDP, community_id
from dissect.transport.limits import Limits
from dissect.transport.ownership import Ownership
from dissect.transport.tcp import ACK, SYN, TcpConnection

NS = 1_000_000_000


class UdpFlow:
    """One UDP flow (RFC 768): counts only; no application layer is dissected over UDP yet."""

    __slots__ = ("session_id", "client_ip", "client_port", "server_ip", "server_port", "packets",
                 "nbytes", "ts_first", "ts_last", "source_file", "foreign", "frame_first", "filtered")

    def __init__(self, session_id: int, client: tuple[bytes, int], server: tuple[bytes, int], ts: int,
                 source_file: str, frame_first: int | None = None) -> None:
        self.session_id = session_id
        self.frame_first = frame_first
        self.filtered = False  # left out by --host/--port: no row
        self.client_ip, self.client_port = client
        self.server_ip, self.server_port = server
        self.packets = [0, 0]
        self.nbytes = [0, 0]
        self.ts_first = ts
        self.ts_last = ts
        self.source_file = source_file
        self.foreign = False

    def session_row(self) -> Session:
        return Session(
            self.session_id, "udp", ntop(self.client_ip), self.client_port, ntop(self.server_ip),
            self.server_port, True, self.ts_first, self.ts_last, self.packets[0], self.packets[1],
            self.nbytes[0], self.nbytes[1], "udp", None, None, None, None, None, None, None, None, None,
            None, self.source_file, None, "", frame_first=self.frame_first,
            community_id=community_id(self.client_ip, self.client_port, self.server_ip, self.server_port, UDP),
        )


def _guess_client(a: tuple[bytes, int], b: tuple[bytes, int]) -> bool:
    """True when ``a`` (the first packet's sender) looks like the client: the higher port, as an
    ephemeral port normally is; on a tie, the first sender."""
    return a[1] >= b[1]


class FlowTable:
    """Every flow by its two directional keys.

    ``first_data(conn, direction, ts, data)`` is given to each new TCP connection as its
    ``on_first_data`` hook (the protocol registry decides its first dissector there);
    ``app_protocol(session_id)`` is asked, when a session's row is written, for the highest layer
    the protocols saw on it beyond the connection itself (Engine.IO sessions span connections).
    """

    def __init__(self, outbox: Outbox, limits: Limits,
                 accept: Callable[[bytes, int, bytes, int], bool] | None = None,
                 first_data: Callable[[TcpConnection, int, int, bytes], None] | None = None,
                 app_protocol: Callable[[int], str | None] | None = None,
                 ownership: Ownership | None = None) -> None:
        self.outbox = outbox
        self.limits = limits
        self.tcp: dict[bytes, tuple[TcpConnection | None, int]] = {}
        self.udp: dict[bytes, tuple[UdpFlow | None, int]] = {}
        self.next_id = 1  # session ids: every flow takes one, filtered or not (ids do not move with filters)
        self.tcp_streams = 0  # Wireshark's tcp.stream numbering of source_file (reset per file)
        self.source_file = ""
        self.accept = accept  # flow filter (--host/--port): False = ignore the flow
        self.first_data = first_data
        self.app_protocol = app_protocol or (lambda sid: None)
        self.ownership = ownership  # --jobs: which sessions this worker dissects
        self.evicted = 0  # flows flushed early because the table was full
        self.half_open: dict[int, TcpConnection] = {}  # SYN seen, no answer yet (oldest first)
        self.half_open_flushed = 0  # ... flushed early: more than limits.max_half_open
        self.filtered = 0  # flows left out by --host/--port

    # -- creation (slow path) ------------------------------------------------------------------------

    def _roles(self, src: bytes, sport: int, dst: bytes, dport: int,
               flags: int) -> tuple[tuple[bytes, int], tuple[bytes, int], bool, int]:
        a, b = (src, sport), (dst, dport)
        if flags & SYN and not flags & ACK:
            return a, b, False, 0
        if flags & SYN:  # a SYN/ACK: the sender is the server
            return b, a, True, 1
        if _guess_client(a, b):
            return a, b, True, 0
        return b, a, True, 1

    def _admitted(self, table: dict[bytes, Any], client: tuple[bytes, int], server: tuple[bytes, int],
                  ts: int) -> bool:
        """False for a flow the filters leave out; else make room in ``table`` if it is full.

        A filtered-out flow is still created (its session id and tcp.stream are taken, so ids are
        those of the unfiltered analysis), but only tracked as another worker's flow is under
        ``--jobs``: its SYN, FIN and RST, and no row."""
        if self.accept is not None and not self.accept(client[0], client[1], server[0], server[1]):
            self.filtered += 1
            return False
        if len(table) >= 2 * self.limits.max_flows:
            self.evict(ts, force=True)
        return True

    def new_tcp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int, flags: int,
                ts: int) -> tuple[TcpConnection | None, int]:
        client, server, inferred, d = self._roles(src, sport, dst, dport, flags)
        rkey = _reverse(key, len(src))
        admitted = self._admitted(self.tcp, client, server, ts)
        conn = TcpConnection(self.next_id, client, server, inferred, ts, self.source_file,
                             self.limits.max_reassembly_bytes, self.outbox.frame, self.tcp_streams)
        self.next_id += 1
        self.tcp_streams += 1
        self.tcp[key] = (conn, d)
        self.tcp[rkey] = (conn, 1 - d)
        if not admitted:
            conn.filtered = True
            conn.disown()
        elif self.ownership is not None:
            self.ownership.new_flow(conn.session_id)  # the first payload may re-decide
        conn.on_first_data = self.first_data
        if flags & SYN and not flags & ACK:
            half_open = self.half_open
            half_open[conn.session_id] = conn
            if len(half_open) > self.limits.max_half_open:
                self._shed_half_open(ts)
        return conn, d

    def _shed_half_open(self, ts: int) -> None:
        """Too many SYNs without an answer: forget the flows that got one since, and write out the
        older half of the others (each keeps its sessions row; memory stays bounded)."""
        # (what every --jobs worker sees alike: the SYN/ACK and the close, not the data)
        waiting = {sid: c for sid, c in self.half_open.items() if c.synack_ts is None and c.close == "open"}
        victims = list(waiting.values())[: len(waiting) // 2]
        for conn in victims:
            del waiting[conn.session_id]
            alen = len(conn.client_ip)
            key = conn.client_ip + conn.server_ip + conn.client_port.to_bytes(2, "big") + \
                conn.server_port.to_bytes(2, "big")
            for k in (key, _reverse(key, alen)):
                entry = self.tcp.get(k)
                if entry is not None and entry[0] is conn:
                    del self.tcp[k]
            self._flush_tcp(conn, ts)
        self.half_open.clear()
        self.half_open.update(waiting)  # the same dict: the pipeline holds it
        self.half_open_flushed += len(victims)

    def restart_tcp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int, flags: int,
                    ts: int) -> tuple[TcpConnection | None, int]:
        """A new SYN on a 5-tuple whose connection has finished starts a new session."""
        old, _ = self.tcp[key]
        rkey = _reverse(key, len(src))
        del self.tcp[key]
        self.tcp.pop(rkey, None)
        if old is not None:
            self._flush_tcp(old, ts)
        return self.new_tcp(key, src, dst, sport, dport, flags, ts)

    def new_udp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int,
                ts: int) -> tuple[UdpFlow | None, int]:
        a, b = (src, sport), (dst, dport)
        client, server, d = (a, b, 0) if _guess_client(a, b) else (b, a, 1)
        rkey = _reverse(key, len(src))
        admitted = self._admitted(self.udp, client, server, ts)
        flow = UdpFlow(self.next_id, client, server, ts, self.source_file, self.outbox.frame)
        self.next_id += 1
        self.udp[key] = (flow, d)
        self.udp[rkey] = (flow, 1 - d)
        if not admitted:
            flow.filtered = flow.foreign = True
        elif self.ownership is not None:
            flow.foreign = not self.ownership.new_flow(flow.session_id)
        return flow, d

    # -- eviction and the end ------------------------------------------------------------------------

    def _flush_tcp(self, conn: TcpConnection, ts: int, capture_end: int | None = None) -> None:
        self.half_open.pop(conn.session_id, None)
        conn.finish(ts)
        if conn.filtered:
            return
        self.outbox.sessions.append(conn.session_row(self.app_protocol(conn.session_id)))
        hs = conn.handshake_row(capture_end)
        if hs is not None:
            self.outbox.handshakes.append(hs)

    def evict(self, now: int, force: bool = False) -> None:
        """Flush flows closed for a while or idle too long; with ``force``, also the oldest half
        of what is left when the table is full."""
        lim = self.limits
        closed_before = now - int(lim.closed_linger_s * NS)
        idle_before = now - int(lim.idle_timeout_s * NS)
        for table, is_tcp in ((self.tcp, True), (self.udp, False)):
            victims: dict[int, TcpConnection | UdpFlow] = {}
            for flow, _d in table.values():
                if flow is None or flow.session_id in victims:
                    continue
                if flow.ts_last < idle_before or (
                    is_tcp and flow.finished and flow.ts_last < closed_before  # type: ignore[union-attr]
                ):
                    victims[flow.session_id] = flow
            if force and len(table) - 2 * len(victims) >= 2 * lim.max_flows:
                live = sorted({id(f): f for f, _ in table.values() if f is not None}.values(),
                              key=lambda f: f.ts_last)
                for f in live[: len(live) // 2]:
                    victims[f.session_id] = f
                self.evicted += len(live) // 2
            if victims:
                for key in [k for k, (f, _) in table.items() if f is not None and f.session_id in victims]:
                    del table[key]
                for f in victims.values():
                    if is_tcp:
                        self._flush_tcp(f, now)  # type: ignore[arg-type]
                    else:
                        if not f.filtered:
                            self.outbox.sessions.append(f.session_row())

    def flush_all(self, now: int) -> None:
        seen: set[int] = set()
        for flow, _ in list(self.tcp.values()):
            if flow is not None and flow.session_id not in seen:
                seen.add(flow.session_id)
                self._flush_tcp(flow, now, capture_end=now)
        for uflow, _ in list(self.udp.values()):
            if uflow is not None and uflow.session_id not in seen:
                seen.add(uflow.session_id)
                if not uflow.filtered:
                    self.outbox.sessions.append(uflow.session_row())
        self.tcp.clear()
        self.udp.clear()


def reverse_key(key: bytes, alen: int) -> bytes:
    """The key of the opposite direction: swap the addresses and the ports."""
    a = 2 * alen
    return key[alen:a] + key[:alen] + key[a + 2 : a + 4] + key[a : a + 2]


_reverse = reverse_key
