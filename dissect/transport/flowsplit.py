"""Flow tables for an analysis split by flows (``--dask``), numbering flows as one process does.

A local run's flow table sees every packet of every file in order: which packet starts a flow, its
session id, when it is evicted or restarted by a new SYN all follow from that. A run split over
files and machines gets the same from three variants of :class:`~dissect.transport.flows.FlowTable`
(the same code takes every decision):

1. :class:`LogTable`, one per file, in parallel: the file is read from an empty table, and the table
   logs, in the order the packet loop calls it, what the flow table's decisions depend on: each
   5-tuple's first packet in each eviction interval (:data:`CREATE`, :data:`UCREATE`), every SYN, FIN
   and RST (:data:`CTRL`), each 5-tuple's last packet time and packet count per interval
   (:data:`LAST`, :data:`ULAST`) and the eviction points (:data:`EVICT`). It forgets its flows at each
   eviction point, so every interval starts afresh. What the layer above notices in the bytes is
   logged as :data:`SIGHT` (an Engine.IO sid; see ``dissect.run.flow_index``).
2. :class:`ReplayTable`, once, over the files' logs in order (packed: ``dissect.transport.flowlog``,
   decoded as a stream): a flow table taking the real one's decisions, driven by the logs as the
   packet loop drives it for flows another ``--jobs`` worker owns, its TCP flows kept as numbers in
   per-flow arrays rather than objects (what those decisions read). Non-control packets only move
   a flow's last-packet time, which only the eviction points read; the logs give it per interval. So
   it creates, restarts, evicts and numbers the flows as the local run's table does, and records
   each flow's first packet (file, frame, 5-tuple), last file, work (packets) and end. Two bounds
   read the table as a whole at any packet, a full table (``--max-flows``) and too many half-open
   flows (``--max-half-open``): if either is reached the replay raises :class:`Inexact` (the caller
   then analyses every file in one task), and so does a packet time past 64 bits of nanoseconds.
3. :class:`PlanTable`, per task: reads the files of some flows and dissects only those: each is
   created at its planned first packet with its planned session id and tcp.stream; every other
   packet goes to a :class:`Placeholder`, forgotten at every eviction point (so any packet a flow of
   the task starts on reaches ``new_tcp``). A flow of the task behaves as in the local run: what
   happens to it (its packets, eviction by its own times, a new SYN after its own FINs) depends on
   it alone once the two bounds above are not reached.

One difference remains with a local run, as with ``--jobs``: a flow the replay tracks as another
worker's flow is finished when both FINs are seen, where a dissected flow is finished when they are
reached in order; a FIN sent while bytes before it are missing from the capture, followed by a new
SYN on the same 5-tuple or an eviction before the hole is resolved, can number flows differently.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from dissect.records import Outbox
from dissect.transport.flowlog import PackedLog
from dissect.transport.flows import NS, FlowTable, UdpFlow, reverse_key
from dissect.transport.limits import Limits
from dissect.transport.tcp import ACK, FIN, RST, SYN, TcpConnection

# Log events, tuples whose first item is the kind.
CREATE = 0  # (CREATE, key, flags, ts, frame): a TCP packet on a 5-tuple the table does not hold
CTRL = 1  # (CTRL, key, flags, seq, ts, frame): a TCP packet with SYN, FIN or RST
LAST = 2  # (LAST, key, ts_last, packets): a TCP flow's last packet time and packets in the interval
UCREATE = 3  # (UCREATE, key, ts, frame)
ULAST = 4  # (ULAST, key, ts_last, packets)
EVICT = 5  # (EVICT, ts): the packet loop's eviction point
SIGHT = 6  # (SIGHT, key, what): the flow's bytes name ``what`` (an affinity key: flows sharing one go together)

Event = tuple[Any, ...]
NEVER = -(1 << 62)  # a last-packet time older than any eviction's horizon


def split_key(key: bytes) -> tuple[bytes, bytes, int, int]:
    """(src, dst, sport, dport) of a flow key (addresses then ports, as the packet loop builds it)."""
    alen = (len(key) - 4) // 2
    a = 2 * alen
    return key[:alen], key[alen:a], (key[a] << 8) | key[a + 1], (key[a + 2] << 8) | key[a + 3]


class Inexact(Exception):
    """The flow table reached a bound that reads the whole table at any packet (``--max-flows`` or
    ``--max-half-open``): the replay of the logs cannot follow it."""


# -- 1. the per-file log ------------------------------------------------------------------------------

class LogConn(TcpConnection):
    """A TCP flow of a :class:`LogTable`: dissected by nobody (the layer above may look at its bytes),
    its SYN/FIN/RST logged."""

    __slots__ = ("log", "box", "kc", "ks")
    log: PackedLog | list[Event]
    box: Outbox
    kc: bytes  # its key client to server
    ks: bytes  # server to client

    def control(self, d: int, ts: int, seq: int, ack: int, flags: int) -> None:
        self.log.append((CTRL, self.kc if d == 0 else self.ks, flags, seq, ts, self.box.frame))
        super().control(d, ts, seq, ack, flags)


class LogUdp(UdpFlow):
    __slots__ = ("kc",)
    kc: bytes


class LogTable(FlowTable):
    """The flow table of one file's index pass (module doc, step 1). ``attach(conn, syn)`` is called
    for every TCP flow it creates (``syn``: created by a SYN) and may give it a dissector. The log is
    packed (:class:`~dissect.transport.flowlog.PackedLog`) unless ``packed`` is false (a list of the
    event tuples)."""

    def __init__(self, outbox: Outbox, limits: Limits,
                 attach: Callable[[LogConn, bool], None] | None = None, packed: bool = True) -> None:
        super().__init__(outbox, limits)
        self.log: PackedLog | list[Event] = PackedLog() if packed else []
        self.attach = attach
        self.intervals = 0  # eviction points passed

    def new_tcp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int, flags: int,
                ts: int) -> tuple[TcpConnection | None, int]:
        frame = self.outbox.frame
        self.log.append((CREATE, key, flags, ts, frame))
        client, server, inferred, d = self._roles(src, sport, dst, dport, flags)
        conn = LogConn(0, client, server, inferred, ts, self.source_file, self.limits.max_reassembly_bytes, frame)
        rkey = reverse_key(key, len(src))
        conn.log = self.log
        conn.box = self.outbox
        conn.kc, conn.ks = (key, rkey) if d == 0 else (rkey, key)
        self.tcp[key] = (conn, d)
        self.tcp[rkey] = (conn, 1 - d)
        if self.attach is not None:
            self.attach(conn, bool(flags & SYN and not flags & ACK))
        return conn, d

    def restart_tcp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int, flags: int,
                    ts: int) -> tuple[TcpConnection | None, int]:
        old = self.tcp[key][0]
        if isinstance(old, LogConn):
            self.log.append((LAST, old.kc, old.ts_last, old.packets[0] + old.packets[1]))
        return self.new_tcp(key, src, dst, sport, dport, flags, ts)

    def new_udp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int,
                ts: int) -> tuple[UdpFlow | None, int]:
        frame = self.outbox.frame
        self.log.append((UCREATE, key, ts, frame))
        flow = LogUdp(0, (src, sport), (dst, dport), ts, self.source_file, frame)
        flow.kc = key
        self.udp[key] = (flow, 0)
        self.udp[reverse_key(key, len(src))] = (flow, 1)
        return flow, 0

    def close(self) -> None:
        """The file is read: log what the flows still held did, and pack the log."""
        self.dump()
        if isinstance(self.log, PackedLog):
            self.log.close()

    def dump(self) -> None:
        """Log every flow's last packet time and packet count of the interval."""
        log = self.log
        seen: set[int] = set()
        for conn, _ in self.tcp.values():
            if isinstance(conn, LogConn) and id(conn) not in seen:
                seen.add(id(conn))
                log.append((LAST, conn.kc, conn.ts_last, conn.packets[0] + conn.packets[1]))
        for flow, _ in self.udp.values():
            if isinstance(flow, LogUdp) and id(flow) not in seen:
                seen.add(id(flow))
                log.append((ULAST, flow.kc, flow.ts_last, flow.packets[0] + flow.packets[1]))

    def evict(self, now: int, force: bool = False) -> None:
        """The packet loop's eviction point: the interval ends; the next one starts from an empty table."""
        self.dump()
        self.log.append((EVICT, now))
        self.tcp.clear()
        self.udp.clear()
        self.half_open.clear()
        self.intervals += 1

    def flush_all(self, now: int) -> None:
        self.dump()
        self.tcp.clear()
        self.udp.clear()


# -- 2. the replay ------------------------------------------------------------------------------------

# A replayed TCP flow's state bits (``ReplayTable.state``).
_FIN0, _FIN1, _RST = 1, 2, 4


class ReplayTable(FlowTable):
    """The local run's flow table, driven by the files' logs (module doc, step 2). After
    :meth:`replay_file` of every file in order, flow ``session_id`` is at index ``session_id - 1`` of
    the per-flow arrays.

    Its TCP flows are not connection objects: the table takes the flow table's decisions (the same
    roles, filters, bounds, restarts and evictions as :class:`~dissect.transport.flows.FlowTable`)
    on what they read of a flow, kept in per-flow arrays: last packet time, initial sequence number
    each way, FINs seen and RST (a FIN counts as done when seen, as for another ``--jobs`` worker's
    flow: module doc). An open flow costs its two keys in :attr:`open` (``session_id << 1 |
    direction``); UDP flows are the flow table's own."""

    def __init__(self, outbox: Outbox, limits: Limits,
                 accept: Callable[[bytes, int, bytes, int], bool] | None = None) -> None:
        super().__init__(outbox, limits, accept)
        self.file_no = -1
        self.open: dict[bytes, int] = {}  # an open TCP flow's keys: session_id << 1 | direction
        self.waiting: dict[int, None] = {}  # TCP flows that sent a SYN and had no answer yet
        self.first_file = array("i")
        self.first_frame = array("q")
        self.keys = bytearray()  # every flow's first key, one after the other
        self.key_end = array("q")  # where each flow's first key ends in ``keys``
        self.stream = array("i")  # tcp.stream; -1 for UDP
        self.skipped = bytearray()  # 1: filtered out by --host/--port (no rows)
        self.last_file = array("i")
        self.work = array("q")  # packets
        self.end_file = array("i")  # file during which it was flushed; -1: at the end of the run
        self.end_ts = array("q")
        self.end_seq = array("q")  # order of the flushes
        self.flushes = 0
        self.ts_last = array("q")  # TCP: last packet time
        self.isn0 = array("q")  # TCP: initial sequence number client to server (-1: none yet)
        self.isn1 = array("q")  # ... server to client
        self.state = bytearray()  # TCP: _FIN0 | _FIN1 | _RST
        self.sighted = array("i")  # session ids of the sightings, in order
        self.sighted_key = array("i")  # ... and their affinity keys, by number (``affinity``)
        self.affinity: dict[str, int] = {}  # affinity key: its number

    @property
    def flows(self) -> int:
        return len(self.key_end)

    def first_key(self, i: int) -> bytes:
        """The key of the first packet of flow ``i`` (its session id - 1)."""
        return bytes(self.keys[self.key_end[i - 1] if i else 0 : self.key_end[i]])

    def forget(self) -> None:
        """The replay is over: drop the flows still open (the per-flow arrays stay)."""
        self.open.clear()
        self.waiting.clear()
        self.udp.clear()

    def _born(self, key: bytes, stream: int, skipped: bool, ts: int) -> None:
        self.first_file.append(self.file_no)
        self.first_frame.append(self.outbox.frame)
        self.keys += key
        self.key_end.append(len(self.keys))
        self.stream.append(stream)
        self.skipped.append(1 if skipped else 0)
        self.last_file.append(self.file_no)
        self.work.append(0)
        self.end_file.append(-1)
        self.end_ts.append(0)
        self.end_seq.append(-1)
        self.ts_last.append(ts)
        self.isn0.append(-1)
        self.isn1.append(-1)
        self.state.append(0)

    def _new_tcp(self, key: bytes, flags: int, ts: int) -> int:
        """FlowTable.new_tcp's decisions: a new TCP flow's ``session_id << 1 | direction``."""
        src, dst, sport, dport = split_key(key)
        client, server, _inferred, d = self._roles(src, sport, dst, dport, flags)
        admitted = self._admitted(self.open, client, server, ts)
        sid = self.next_id
        assert sid == len(self.key_end) + 1
        self._born(key, self.tcp_streams, not admitted, ts)
        self.next_id += 1
        self.tcp_streams += 1
        self.open[key] = sid << 1 | d
        self.open[reverse_key(key, len(src))] = sid << 1 | (1 - d)
        if flags & SYN and not flags & ACK:
            self.waiting[sid] = None
            if len(self.waiting) > self.limits.max_half_open:
                self._shed_half_open(ts)
        return sid << 1 | d

    def _restart_tcp(self, key: bytes, flags: int, ts: int) -> int:
        """FlowTable.restart_tcp: a new SYN on a finished flow's 5-tuple."""
        old = self.open.pop(key) >> 1
        self.open.pop(reverse_key(key, (len(key) - 4) // 2), None)
        self.waiting.pop(old, None)
        self._ended(old, ts)
        return self._new_tcp(key, flags, ts)

    def new_udp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int,
                ts: int) -> tuple[UdpFlow | None, int]:
        flow, d = super().new_udp(key, src, dst, sport, dport, ts)
        assert flow is not None and flow.session_id == len(self.key_end) + 1
        self._born(key, -1, flow.filtered, ts)
        return flow, d

    def _ended(self, sid: int, ts: int) -> None:
        i = sid - 1
        self.end_file[i] = self.file_no
        self.end_ts[i] = ts
        self.end_seq[i] = self.flushes
        self.flushes += 1

    def _finished(self, i: int) -> bool:
        st = self.state[i]
        return bool(st & _RST) or st & (_FIN0 | _FIN1) == _FIN0 | _FIN1

    def evict(self, now: int, force: bool = False) -> None:
        """FlowTable.evict: TCP flows here (idle, or finished and lingering), then UDP flows."""
        if force:
            raise Inexact(f"more than --max-flows {self.limits.max_flows} flows were open at once")
        lim = self.limits
        closed_before = now - int(lim.closed_linger_s * NS)
        idle_before = now - int(lim.idle_timeout_s * NS)
        ts_last = self.ts_last
        victims: dict[int, None] = {}
        for v in self.open.values():
            sid = v >> 1
            if sid in victims:
                continue
            t = ts_last[sid - 1]
            if t < idle_before or (t < closed_before and self._finished(sid - 1)):
                victims[sid] = None
        if victims:
            for key in [k for k, v in self.open.items() if v >> 1 in victims]:
                del self.open[key]
            for sid in victims:
                self.waiting.pop(sid, None)
                self._ended(sid, now)
        super().evict(now)  # its TCP table is empty: the UDP flows
        box = self.outbox
        for row in box.sessions:  # UDP flows write their row themselves
            self._ended(row[0], now)
        box.sessions.clear()
        box.handshakes.clear()

    def _shed_half_open(self, ts: int) -> None:
        raise Inexact(f"more than --max-half-open {self.limits.max_half_open} TCP flows waited for an answer")

    def replay_file(self, path: str, log: Iterable[Event]) -> None:
        """Drive the table through one file's log (the next file of the run)."""
        try:
            self._replay(path, log)
        except OverflowError:  # an array's 64 bits
            raise Inexact("a packet time does not fit 64 bits of nanoseconds") from None

    def _replay(self, path: str, log: Iterable[Event]) -> None:  # noqa: C901 - the packet loop's flow part
        self.file_no += 1
        f = self.file_no
        self.source_file = path
        self.tcp_streams = 0
        open_, udp, box, waiting = self.open, self.udp, self.outbox, self.waiting
        last_file, work, ts_last, state = self.last_file, self.work, self.ts_last, self.state
        for ev in log:
            kind = ev[0]
            if kind == CTRL:
                _, key, flags, seq, ts, frame = ev
                v = open_.get(key)
                box.frame = frame
                if v is None:
                    v = self._new_tcp(key, flags, ts)
                i, d = (v >> 1) - 1, v & 1
                if flags & SYN and not flags & ACK and self._finished(i) and \
                        (self.isn0[i] if d == 0 else self.isn1[i]) != seq:
                    v = self._restart_tcp(key, flags, ts)
                    i, d = (v >> 1) - 1, v & 1
                if flags & SYN:  # what TcpConnection.control decides that the table reads
                    isn = self.isn0 if d == 0 else self.isn1
                    if isn[i] < 0:
                        isn[i] = seq
                    if flags & ACK:
                        waiting.pop(i + 1, None)
                if flags & RST:
                    state[i] |= _RST
                if flags & FIN:
                    state[i] |= _FIN1 if d else _FIN0
                ts_last[i] = ts
                last_file[i] = f
            elif kind == CREATE:
                _, key, flags, ts, frame = ev
                v = open_.get(key)
                if v is None:
                    box.frame = frame
                    v = self._new_tcp(key, flags, ts)
                elif flags & 0x07:
                    continue  # its CTRL event follows (a new SYN may start a new flow there)
                i = (v >> 1) - 1
                ts_last[i] = ts
                last_file[i] = f
            elif kind == LAST:
                v = open_.get(ev[1])
                if v is not None:
                    i = (v >> 1) - 1
                    ts_last[i] = ev[2]
                    work[i] += ev[3]
                    last_file[i] = f
            elif kind == UCREATE:
                _, key, ts, frame = ev
                uentry = udp.get(key)
                if uentry is None:
                    box.frame = frame
                    src, dst, sport, dport = split_key(key)
                    uentry = self.new_udp(key, src, dst, sport, dport, ts)
                flow = uentry[0]
                assert flow is not None
                flow.ts_last = ts
                last_file[flow.session_id - 1] = f
            elif kind == ULAST:
                uentry = udp.get(ev[1])
                if uentry is not None and uentry[0] is not None:
                    flow = uentry[0]
                    flow.ts_last = ev[2]
                    work[flow.session_id - 1] += ev[3]
                    last_file[flow.session_id - 1] = f
            elif kind == EVICT:
                self.evict(ev[1])
            elif kind == SIGHT:
                v = open_.get(ev[1])
                if v is not None:
                    self.sighted.append(v >> 1)
                    self.sighted_key.append(self.affinity.setdefault(ev[2], len(self.affinity)))
                    last_file[(v >> 1) - 1] = f


# -- 3. a task's table --------------------------------------------------------------------------------

class Placeholder(TcpConnection):
    """Every TCP flow a task does not dissect: tracked by nobody, finished (a new SYN goes to
    ``new_tcp``, which knows whether it starts a flow of the task), no row."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(0, (b"", 0), (b"", 0), True, NEVER, "", 0)
        self.foreign = self.filtered = True
        self.close = "rst"

    def control(self, d: int, ts: int, seq: int, ack: int, flags: int) -> None:
        pass

    def finish(self, ts: int) -> None:
        pass


class PlanTable(FlowTable):
    """The flow table of a task (module doc, step 3). ``files``: the global numbers of the files the
    task reads, in order; ``tcp`` and ``udp``: its flows by first packet, ``(file number, frame,
    key)``, giving ``(session_id, tcp.stream)`` (TCP) or ``session_id`` (UDP)."""

    def __init__(self, outbox: Outbox, limits: Limits, first_data: Any, app_protocol: Any,
                 files: Sequence[int], tcp: dict[tuple[int, int, bytes], tuple[int, int]],
                 udp: dict[tuple[int, int, bytes], int]) -> None:
        self._numbers: Iterator[int] = iter(files)
        self.file_no = -1
        self._path = ""
        self.tcp_plan = tcp
        self.udp_plan = udp
        self.placeholder = Placeholder()
        uph = UdpFlow(0, (b"", 0), (b"", 0), NEVER, "")
        uph.foreign = uph.filtered = True
        self.udp_placeholder = uph
        super().__init__(outbox, limits, None, first_data, app_protocol)

    @property
    def source_file(self) -> str:
        return self._path

    @source_file.setter
    def source_file(self, path: str) -> None:
        """The packet loop starts the next file."""
        self._path = path
        if path:
            self.file_no = next(self._numbers)

    def new_tcp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int, flags: int,
                ts: int) -> tuple[TcpConnection | None, int]:
        planned = self.tcp_plan.get((self.file_no, self.outbox.frame, key))
        if planned is None:
            ph = self.placeholder
            self.tcp[key] = (ph, 0)
            self.tcp[reverse_key(key, len(src))] = (ph, 1)
            return ph, 0
        self.next_id, self.tcp_streams = planned
        return super().new_tcp(key, src, dst, sport, dport, flags, ts)

    def new_udp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int,
                ts: int) -> tuple[UdpFlow | None, int]:
        planned = self.udp_plan.get((self.file_no, self.outbox.frame, key))
        if planned is None:
            ph = self.udp_placeholder
            self.udp[key] = (ph, 0)
            self.udp[reverse_key(key, len(src))] = (ph, 1)
            return ph, 0
        self.next_id = planned
        return super().new_udp(key, src, dst, sport, dport, ts)

    def _admitted(self, table: dict[bytes, Any], client: tuple[bytes, int], server: tuple[bytes, int],
                  ts: int) -> bool:
        return True  # planned flows passed the filters; the table never fills (the replay checked)

    def _shed_half_open(self, ts: int) -> None:
        pass  # never reached in the run being reproduced (the replay checked)

    def evict(self, now: int, force: bool = False) -> None:
        # the placeholders go at every eviction point: the next packet of any 5-tuple reaches new_tcp
        self.placeholder.ts_last = self.udp_placeholder.ts_last = NEVER
        super().evict(now)

    def flush_late(self, ends: Sequence[tuple[int, int]]) -> None:
        """Flush, in this order, the flows of the task that the run flushed after the task's last
        file: ``(session_id, time)``."""
        if not ends:
            return
        where: dict[int, tuple[Any, list[bytes], bool]] = {}
        for table, is_tcp in ((self.tcp, True), (self.udp, False)):
            for key, (flow, _d) in table.items():
                if flow is not None and flow.session_id:
                    where.setdefault(flow.session_id, (flow, [], is_tcp))[1].append(key)
        for sid, ts in ends:
            found = where.get(sid)
            if found is None:
                continue
            flow, keys, is_tcp = found
            table = self.tcp if is_tcp else self.udp
            for key in keys:
                table.pop(key, None)
            if is_tcp:
                self._flush_tcp(flow, ts)
            elif not flow.filtered:
                self.outbox.sessions.append(flow.session_row())
