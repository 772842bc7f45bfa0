"""The plan of a split analysis (``--dask``): which task dissects which flows, reading which files.

:func:`make_plan` replays the files' flow logs (``dissect.run.flow_index``) in order through a
:class:`~dissect.transport.flowsplit.ReplayTable`: every flow gets the session id of a local run,
its first packet, the last file it has packets in, its work (packets) and its end. Flows sharing an
affinity key (an Engine.IO sid, or TLS when there are secrets to decrypt with) form one group; a
group is dissected whole by one task. A task reads a contiguous range of files:

- groups that span files are packed, in order of their files, into tasks of about an even share of
  the work (the run's work over the cluster's threads);
- groups inside one file go to a task that already reads that file and has room, else to tasks of
  their own reading only that file (a file with more work than a share is dealt to several; small
  files in a row are read by one task).

Each task gets its flows by first packet (file, frame, 5-tuple) with their session ids, the flows of
it that the run flushes only after the task's last file (flushed at the end of the task, in the
run's order, at the run's time), the TLS secrets of earlier files and the run's last packet time.

When the replay cannot follow the flow table (:class:`~dissect.transport.flowsplit.Inexact`: a
SYN flood past ``--max-half-open``, more than ``--max-flows`` open flows), the plan is one task
that analyses every file as one process would.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dissect.records import Outbox
from dissect.run.filters import Filters
from dissect.run.flow_index import TLS_KEY, FileIndex
from dissect.transport.flowsplit import Inexact, ReplayTable
from dissect.transport.limits import Limits

# What reading a packet costs a task that does not dissect it, against one it dissects (measured on
# benchmarks/make_capture.py traffic: ~2.2 us against ~10 us a packet).
READ_COST = 0.2


# A task's flow (TaskSpec.flows): file number, frame, session_id, tcp.stream (-1: UDP), key length;
# the key follows.
_FLOW = struct.Struct("<iqiiB")


@dataclass
class TaskSpec:
    """One task of a plan: the files it reads and the flows it dissects (module doc)."""

    number: int
    files: list[int]  # global numbers of the files read, in order
    flows: bytes = b""  # its flows by first packet, packed (:meth:`flow_maps`): a few dozen bytes a flow
    late: list[tuple[int, int]] = field(default_factory=list)  # (session_id, ts), flushed after the files
    secrets: list[str] = field(default_factory=list)  # TLS key log texts of the files before
    last_ts: int = 0
    work: float = 0.0
    whole: bool = False  # one process's analysis of every file (the replay could not follow)

    def flow_maps(self) -> tuple[dict[tuple[int, int, bytes], tuple[int, int]], dict[tuple[int, int, bytes], int]]:
        """Its flows by first packet, ``(file number, frame, key)``: TCP flows give ``(session_id,
        tcp.stream)``, UDP flows ``session_id`` (what :class:`~dissect.transport.flowsplit.PlanTable`
        takes)."""
        tcp: dict[tuple[int, int, bytes], tuple[int, int]] = {}
        udp: dict[tuple[int, int, bytes], int] = {}
        data, pos, size, unpack = self.flows, 0, _FLOW.size, _FLOW.unpack_from
        while pos < len(data):
            f, frame, sid, stream, n = unpack(data, pos)
            pos += size
            key = data[pos : pos + n]
            pos += n
            if stream >= 0:
                tcp[f, frame, key] = (sid, stream)
            else:
                udp[f, frame, key] = sid
        return tcp, udp


@dataclass
class Outline:
    """What the client needs of a plan: the files' statistics, the tasks' sizes, the counters."""

    files: list[dict[str, Any]]
    warnings: Counter[str]
    warning_details: list[tuple[str, str]]
    decode: Counter[str]
    nanosecond: bool
    sessions: int
    tasks: list[tuple[list[int], float]]  # (files, work) per task
    whole: str = ""  # why the plan is one task over every file, if it is


@dataclass
class Plan:
    outline: Outline
    tasks: list[TaskSpec]


class _Groups:
    """Union-find over session ids, by affinity key (its number)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.by_key: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def add(self, sid: int, key: int) -> None:
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


def make_plan(indexes: list[FileIndex], limits: Limits | None = None, filters: Filters | None = None,
              keylog_given: bool = False, threads: int = 1) -> Plan:
    """The plan of a split run over the files of ``indexes`` (in the run's order) for a cluster of
    ``threads`` threads (module doc)."""
    limits = limits or Limits()
    filters = filters or Filters()
    outline = _outline(indexes)
    last_ts = max((ix.last_ts for ix in indexes), default=0)
    every = list(range(len(indexes)))
    table = ReplayTable(Outbox(), limits, filters.flow_filter())
    try:
        for ix in indexes:
            table.replay_file(ix.path, ix.log)  # decoded as it goes (dissect.transport.flowlog)
            ix.log = []  # done with it
    except Inexact as e:
        outline.whole = str(e)
        outline.tasks = [(every, 1.0)]
        return Plan(outline, [TaskSpec(0, every, whole=True)])
    if table.filtered:
        outline.decode["flows-filtered-out"] += table.filtered
    outline.sessions = table.next_id - 1
    table.forget()  # the flows still open: the plan needs only the per-flow arrays now
    secrets_seen = keylog_given or any(ix.secrets for ix in indexes)
    tasks = _assign(table, indexes, secrets_seen, max(1, threads))
    specs = [_spec(n, t, table, indexes, last_ts) for n, t in enumerate(tasks)]
    outline.tasks = [(s.files, s.work) for s in specs]
    return Plan(outline, specs)


def _groups(table: ReplayTable, secrets_seen: bool) -> list[list[int]]:
    """The groups of session ids dissected together (ids of flows left out by the filters excluded)."""
    uf = _Groups()
    tls = -1 if secrets_seen else table.affinity.get(TLS_KEY, -1)
    table.affinity.clear()  # the keys' texts: their numbers tell them apart
    for sid, key in zip(table.sighted, table.sighted_key, strict=True):
        if key == tls:
            continue  # nothing to decrypt with: TLS connections are independent
        uf.add(sid, key)
    del table.sighted[:], table.sighted_key[:]
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


def _assign(table: ReplayTable, indexes: list[FileIndex], secrets_seen: bool, threads: int) -> list[_Task]:
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


def _spec(number: int, task: _Task, table: ReplayTable, indexes: list[FileIndex], last_ts: int) -> TaskSpec:
    spec = TaskSpec(number, list(range(task.first, task.last + 1)), last_ts=last_ts, work=task.work)
    late: list[tuple[int, int, int]] = []
    flows = bytearray()
    pack, keys, key_end = _FLOW.pack, table.keys, table.key_end
    for g in task.groups:
        for sid in g:
            i = sid - 1
            start, end = key_end[i - 1] if i else 0, key_end[i]
            flows += pack(table.first_file[i], table.first_frame[i], sid, table.stream[i], end - start)
            flows += keys[start:end]
            if table.end_file[i] > task.last:
                late.append((table.end_seq[i], sid, table.end_ts[i]))
    spec.flows = bytes(flows)
    late.sort()
    spec.late = [(sid, ts) for _seq, sid, ts in late]
    for ix in indexes[: task.first]:
        spec.secrets.extend(ix.secrets)
    return spec
