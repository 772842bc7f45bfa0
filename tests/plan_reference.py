"""The plan of a split run as it was made before the logs were packed and the replay made compact
(dissect/run/flow_plan.py and dissect/transport/flowsplit.py at 3cbb773): every flow log as
tuples, a real connection per replayed flow, lists and dicts per flow. Kept as the reference the
tests compare the plan with (``tests/test_plan_memory.py``); only the names of its classes changed."""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dissect.records import Outbox
from dissect.run.filters import Filters
from dissect.run.flow_index import TLS_KEY, FileIndex
from dissect.run.flow_plan import READ_COST, Outline
from dissect.transport.flows import FlowTable, UdpFlow
from dissect.transport.flowsplit import (
    CREATE,
    CTRL,
    EVICT,
    LAST,
    SIGHT,
    UCREATE,
    ULAST,
    Event,
    Inexact,
    split_key,
)
from dissect.transport.limits import Limits
from dissect.transport.tcp import ACK, FIN, SYN, TcpConnection


class OldReplayTable(FlowTable):
    """The local run's flow table, driven by the files' logs (module doc, step 2). After
    :meth:`replay_file` of every file in order, flow ``session_id`` is at index ``session_id - 1`` of
    the per-flow arrays."""

    def __init__(self, outbox: Outbox, limits: Limits,
                 accept: Callable[[bytes, int, bytes, int], bool] | None = None) -> None:
        super().__init__(outbox, limits, accept)
        self.file_no = -1
        self.first_file = array("i")
        self.first_frame: list[int] = []
        self.first_key: list[bytes] = []
        self.stream = array("i")  # tcp.stream; -1 for UDP
        self.skipped = bytearray()  # 1: filtered out by --host/--port (no rows)
        self.last_file = array("i")
        self.work = array("q")  # packets
        self.end_file = array("i")  # file during which it was flushed; -1: at the end of the run
        self.end_ts: list[int] = []
        self.end_seq = array("q")  # order of the flushes
        self.flushes = 0
        self.sightings: list[tuple[int, str]] = []  # (session_id, affinity key)

    def _born(self, key: bytes, stream: int, skipped: bool) -> None:
        self.first_file.append(self.file_no)
        self.first_frame.append(self.outbox.frame)
        self.first_key.append(key)
        self.stream.append(stream)
        self.skipped.append(1 if skipped else 0)
        self.last_file.append(self.file_no)
        self.work.append(0)
        self.end_file.append(-1)
        self.end_ts.append(0)
        self.end_seq.append(-1)

    def new_tcp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int, flags: int,
                ts: int) -> tuple[TcpConnection | None, int]:
        stream = self.tcp_streams
        conn, d = super().new_tcp(key, src, dst, sport, dport, flags, ts)
        assert conn is not None and conn.session_id == len(self.first_key) + 1
        self._born(key, stream, conn.filtered)
        return conn, d

    def new_udp(self, key: bytes, src: bytes, dst: bytes, sport: int, dport: int,
                ts: int) -> tuple[UdpFlow | None, int]:
        flow, d = super().new_udp(key, src, dst, sport, dport, ts)
        assert flow is not None and flow.session_id == len(self.first_key) + 1
        self._born(key, -1, flow.filtered)
        return flow, d

    def _ended(self, sid: int, ts: int) -> None:
        i = sid - 1
        self.end_file[i] = self.file_no
        self.end_ts[i] = ts
        self.end_seq[i] = self.flushes
        self.flushes += 1

    def _flush_tcp(self, conn: TcpConnection, ts: int, capture_end: int | None = None) -> None:
        self.half_open.pop(conn.session_id, None)
        self._ended(conn.session_id, ts)

    def evict(self, now: int, force: bool = False) -> None:
        if force:
            raise Inexact(f"more than --max-flows {self.limits.max_flows} flows were open at once")
        super().evict(now)
        box = self.outbox
        for row in box.sessions:  # UDP flows write their row themselves
            self._ended(row[0], now)
        box.sessions.clear()
        box.handshakes.clear()

    def _shed_half_open(self, ts: int) -> None:
        raise Inexact(f"more than --max-half-open {self.limits.max_half_open} TCP flows waited for an answer")

    def replay_file(self, path: str, log: Sequence[Event]) -> None:  # noqa: C901 - the packet loop's flow part
        """Drive the table through one file's log (the next file of the run)."""
        self.file_no += 1
        f = self.file_no
        self.source_file = path
        self.tcp_streams = 0
        tcp, udp, box, half_open = self.tcp, self.udp, self.outbox, self.half_open
        last_file, work = self.last_file, self.work
        for ev in log:
            kind = ev[0]
            if kind == CTRL:
                _, key, flags, seq, ts, frame = ev
                entry = tcp.get(key)
                box.frame = frame
                if entry is None:
                    entry = self.new_tcp(key, *split_key(key), flags, ts)
                conn, d = entry
                assert conn is not None
                if flags & SYN and not flags & ACK and conn.finished and conn.streams[d].isn != seq:
                    conn, d = self.restart_tcp(key, *split_key(key), flags, ts)
                    assert conn is not None
                conn.control(d, ts, seq, 0, flags)
                if flags & ACK and flags & SYN:
                    half_open.pop(conn.session_id, None)
                conn.ts_last = ts
                if flags & FIN:
                    conn.streams[d].fin_done = True  # as for another worker's flow (module doc)
                last_file[conn.session_id - 1] = f
            elif kind == CREATE:
                _, key, flags, ts, frame = ev
                entry = tcp.get(key)
                if entry is None:
                    box.frame = frame
                    entry = self.new_tcp(key, *split_key(key), flags, ts)
                elif flags & 0x07:
                    continue  # its CTRL event follows (a new SYN may start a new flow there)
                conn = entry[0]
                assert conn is not None
                conn.ts_last = ts
                last_file[conn.session_id - 1] = f
            elif kind == LAST:
                entry = tcp.get(ev[1])
                if entry is not None and entry[0] is not None:
                    conn = entry[0]
                    conn.ts_last = ev[2]
                    work[conn.session_id - 1] += ev[3]
                    last_file[conn.session_id - 1] = f
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
                entry = tcp.get(ev[1])
                if entry is not None and entry[0] is not None:
                    self.sightings.append((entry[0].session_id, ev[2]))
                    last_file[entry[0].session_id - 1] = f


@dataclass
class OldTaskSpec:
    """One task of a plan: the files it reads and the flows it dissects (module doc)."""

    number: int
    files: list[int]  # global numbers of the files read, in order
    tcp: dict[tuple[int, int, bytes], tuple[int, int]] = field(default_factory=dict)
    udp: dict[tuple[int, int, bytes], int] = field(default_factory=dict)
    late: list[tuple[int, int]] = field(default_factory=list)  # (session_id, ts), flushed after the files
    secrets: list[str] = field(default_factory=list)  # TLS key log texts of the files before
    last_ts: int = 0
    work: float = 0.0
    whole: bool = False  # one process's analysis of every file (the replay could not follow)


@dataclass
class OldPlan:
    outline: Outline
    tasks: list[OldTaskSpec]


class _Groups:
    """Union-find over session ids, by affinity key."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.by_key: dict[str, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def add(self, sid: int, key: str) -> None:
        other = self.by_key.setdefault(key, sid)
        self.parent.setdefault(sid, sid)
        a, b = self.find(sid), self.find(other)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


@dataclass
class _Task:
    first: int
    last: int
    work: float = 0.0
    groups: list[list[int]] = field(default_factory=list)


def _outline(indexes: list[FileIndex]) -> Outline:
    out = Outline([], Counter(), [], Counter(), False, 0, [])
    for ix in indexes:
        out.files.append(ix.info)
        out.warnings.update(ix.warnings)
        out.warning_details.extend(ix.warning_details)
        out.decode.update(ix.decode)
        out.nanosecond = out.nanosecond or ix.nanosecond
    return out


def old_make_plan(indexes: list[FileIndex], limits: Limits | None = None, filters: Filters | None = None,
              keylog_given: bool = False, threads: int = 1) -> OldPlan:
    """The plan of a split run over the files of ``indexes`` (in the run's order) for a cluster of
    ``threads`` threads (module doc)."""
    limits = limits or Limits()
    filters = filters or Filters()
    outline = _outline(indexes)
    last_ts = max((ix.last_ts for ix in indexes), default=0)
    every = list(range(len(indexes)))
    table = OldReplayTable(Outbox(), limits, filters.flow_filter())
    try:
        for ix in indexes:
            table.replay_file(ix.path, ix.log)
    except Inexact as e:
        outline.whole = str(e)
        outline.tasks = [(every, 1.0)]
        return OldPlan(outline, [OldTaskSpec(0, every, whole=True)])
    if table.filtered:
        outline.decode["flows-filtered-out"] += table.filtered
    outline.sessions = table.next_id - 1
    secrets_seen = keylog_given or any(ix.secrets for ix in indexes)
    tasks = _assign(table, indexes, secrets_seen, max(1, threads))
    specs = [_spec(n, t, table, indexes, last_ts) for n, t in enumerate(tasks)]
    outline.tasks = [(s.files, s.work) for s in specs]
    return OldPlan(outline, specs)


def _groups(table: OldReplayTable, secrets_seen: bool) -> list[list[int]]:
    """The groups of session ids dissected together (ids of flows left out by the filters excluded)."""
    uf = _Groups()
    for sid, key in table.sightings:
        if key == TLS_KEY and not secrets_seen:
            continue  # nothing to decrypt with: TLS connections are independent
        uf.add(sid, key)
    members: dict[int, list[int]] = {}
    for sid in uf.parent:
        members.setdefault(uf.find(sid), []).append(sid)
    skipped = table.skipped
    out = [[sid] for sid in range(1, len(skipped) + 1) if not skipped[sid - 1] and sid not in uf.parent]
    for group in members.values():
        kept = sorted(s for s in group if not skipped[s - 1])
        if kept:
            out.append(kept)
    return out


def _assign(table: OldReplayTable, indexes: list[FileIndex], secrets_seen: bool, threads: int) -> list[_Task]:
    first, last, work = table.first_file, table.last_file, table.work
    packets = [ix.packets for ix in indexes]
    spanning: list[tuple[int, int, float, list[int]]] = []
    local: dict[int, list[tuple[float, list[int]]]] = {}
    total = READ_COST * sum(packets)
    for g in _groups(table, secrets_seen):
        a = min(first[s - 1] for s in g)
        b = max(last[s - 1] for s in g)
        w = float(sum(work[s - 1] for s in g)) + 1.0
        total += w
        if a == b:
            local.setdefault(a, []).append((w, g))
        else:
            spanning.append((a, b, w, g))
    share = total / threads
    tasks: list[_Task] = []
    # Groups spanning files, in order of their files, into as many tasks as their work needs (at most
    # one per thread): a task takes groups until it has its part of that work.
    if spanning:
        spanning.sort(key=lambda x: (x[0], x[1]))
        span_work = sum(w for _, _, w, _ in spanning)
        count = max(1, min(threads, len(spanning), math.ceil(span_work / share)))
        part = span_work / count
        current: _Task | None = None
        taken = 0.0
        for a, b, w, g in spanning:
            if current is None or (taken >= part and len(tasks) < count):
                current = _Task(a, b)
                tasks.append(current)
                taken = 0.0
            current.last = max(current.last, b)
            current.groups.append(g)
            current.work += w
            taken += w
        for t in tasks:
            t.work += READ_COST * sum(packets[t.first : t.last + 1])
    # Groups inside one file: to a task reading it with room, else to tasks of that file.
    previous: _Task | None = None
    for f in sorted(local):
        groups = sorted(local[f], key=lambda x: -x[0])
        w_file = sum(w for w, _ in groups)
        hosts = [t for t in tasks if t.first <= f <= t.last and t.work + w_file <= share]
        if hosts:
            host = min(hosts, key=lambda t: t.work)
            host.work += w_file
            host.groups.extend(g for _, g in groups)
            continue
        n = max(1, min(len(groups), math.ceil((w_file + READ_COST * packets[f]) / share)))
        if n == 1 and previous is not None and previous.last == f - 1 and \
                previous.work + w_file + READ_COST * packets[f] <= share:
            previous.last = f  # small files in a row: one task reads them all
            previous.work += w_file + READ_COST * packets[f]
            previous.groups.extend(g for _, g in groups)
            continue
        mine = [_Task(f, f, READ_COST * packets[f]) for _ in range(n)]
        previous = mine[0] if n == 1 else None
        for w, g in groups:  # the largest first, each to the least loaded
            t = min(mine, key=lambda t: t.work)
            t.work += w
            t.groups.append(g)
        tasks.extend(mine)
    return tasks


def _spec(number: int, task: _Task, table: OldReplayTable, indexes: list[FileIndex], last_ts: int) -> OldTaskSpec:
    spec = OldTaskSpec(number, list(range(task.first, task.last + 1)), last_ts=last_ts, work=task.work)
    late: list[tuple[int, int, int]] = []
    for g in task.groups:
        for sid in g:
            i = sid - 1
            place = (table.first_file[i], table.first_frame[i], table.first_key[i])
            if table.stream[i] >= 0:
                spec.tcp[place] = (sid, table.stream[i])
            else:
                spec.udp[place] = sid
            if table.end_file[i] > task.last:
                late.append((table.end_seq[i], sid, table.end_ts[i]))
    late.sort()
    spec.late = [(sid, ts) for _seq, sid, ts in late]
    for ix in indexes[: task.first]:
        spec.secrets.extend(ix.secrets)
    return spec
