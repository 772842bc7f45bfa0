"""``--jobs N`` for N of 3 or more (and ``dissect.analyze(jobs=N)``, N of 2 or more): N processes
share the work of one analysis, each owning part of the sessions. (``dissect report --jobs 2`` is
:mod:`dissect.stages` instead: one process dissects, one writes.)

Every worker reads every packet and creates every flow, so session ids come out the same in all of
them; the application work of a flow (reassembly, dissectors, rows) is done only by its owner:

- an HTTP connection whose first request names an Engine.IO ``sid`` belongs to the owner of that
  sid, so the polling requests of one Engine.IO session (on many TCP connections) and the WebSocket
  that upgrades them meet in one worker;
- an Engine.IO polling handshake (no sid yet) is *shared*: every worker dissects it, and its rows
  go to the owner of the sid its open packet reveals;
- every other flow is dealt round-robin by session id.

A foreign flow still has its SYN/FIN/RST and last-packet time tracked, so that eviction and the
"new SYN on a finished 5-tuple" rule number sessions identically everywhere. Each worker writes its
rows to its own part files; the parent concatenates them and merges the summaries. The rows are
those of ``--jobs 1``; only their order in the files differs.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .flows import Limits
from .records import TABLES
from .summary import SummaryBuilder
from .writers import Blocks

SHARED = -1


class Ownership:
    """Which worker owns which session, as seen by worker ``index`` of ``count``."""

    def __init__(self, index: int, count: int) -> None:
        self.index = index
        self.count = count
        self.owners: dict[int, int] = {}  # session_id -> owner (or SHARED)
        self.flow_owner: dict[int, int] = {}  # session_id -> owner when dealt round-robin
        self.any_shared = False  # a shared session was seen (its rows must wait for the sid)

    def new_flow(self, session_id: int) -> bool:
        """Register a flow; True when this worker owns it (for now: HTTP may re-decide).

        Flows are dealt round-robin by session id (the same numbering in every worker): an even
        split of the sessions.
        """
        owner = session_id % self.count
        self.flow_owner[session_id] = owner
        self.owners[session_id] = owner
        return owner == self.index

    def sid_owner(self, sid: str) -> int:
        return zlib.crc32(sid.encode("utf-8", "replace")) % self.count

    def first_request(self, session_id: int, target: str) -> bool:
        """Re-decide a connection's owner from its first HTTP request; True when it is ours
        (or shared)."""
        from .engineio import EngineIO, _query

        if EngineIO.is_engineio_target(target):
            # Read as the Engine.IO tracker reads it, so the sid hashed here is the one it names.
            query = _query(target)
            sid = query.get("sid", "")
            if sid:
                self.owners[session_id] = self.sid_owner(sid)
            elif query.get("transport", "") != "websocket":
                self.owners[session_id] = SHARED
                self.any_shared = True
        owner = self.owners[session_id]
        return owner == SHARED or owner == self.index


class OwnedRows:
    """A consumer wrapper keeping only the rows of sessions this worker owns; rows of a shared
    session wait until its Engine.IO sid (hence its owner) is known."""

    def __init__(self, inner: Any, own: Ownership) -> None:
        self.inner = inner
        self.own = own
        self.waiting: dict[int, list[tuple[str, tuple]]] = {}

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        if not self.own.any_shared and table not in ("sessions", "handshakes"):
            # Foreign flows make no application rows; only flushed flows (sessions and their
            # TCP handshake) and shared sessions need sorting out.
            self.inner.add(table, rows)
            return
        owners = self.own.owners
        me = self.own.index
        keep = []
        for r in rows:
            sid = r[0]
            owner = owners.get(sid, me)
            if owner == SHARED:
                eio_sid = getattr(r, "eio_sid", None) if table == "sio_packets" else None
                if eio_sid:
                    owner = owners[sid] = self.own.sid_owner(eio_sid)
                    self._release(sid, owner)
                else:
                    self.waiting.setdefault(sid, []).append((table, r))
                    continue
            if owner == me:
                keep.append(r)
        if keep:
            self.inner.add(table, keep)

    def _release(self, sid: int, owner: int) -> None:
        held = self.waiting.pop(sid, [])
        if owner == self.own.index:
            for table, r in held:
                self.inner.add(table, [r])

    def finish(self) -> None:
        """Shared sessions whose sid never showed go to the owner they were dealt to."""
        for sid in list(self.waiting):
            owner = self.own.flow_owner.get(sid, 0)
            self.own.owners[sid] = owner
            self._release(sid, owner)


@dataclass
class WorkerResult:
    summary: SummaryBuilder
    files: list[dict[str, Any]]
    warnings: dict[str, int]
    warning_details: list[tuple[str, str]]
    counters: dict[str, int]
    nanosecond: bool
    rows: dict[str, list[tuple]] | None  # when collecting in memory (dissect.analyze)
    blocks: dict[str, Blocks] | None  # where the part files' blocks of rows are (ReportWriter.blocks)


def _worker(args: tuple[int, int, list[str], str | None, str, int, Limits, Any, bool, bool]) -> WorkerResult:
    index, count, files, out_dir, fmt, digits, limits, filters, quiet, blocks = args
    from .api import drive
    from .pipeline import Pipeline
    from .writers import MemoryCollector, ReportWriter

    own = Ownership(index, count)
    summary = SummaryBuilder()
    sink: Any = ReportWriter(out_dir, fmt, digits, blocks) if out_dir else MemoryCollector()
    owned = OwnedRows(_Tee([filters.wrap(sink), filters.wrap(summary)]), own)
    pipe = Pipeline([owned], limits, filters.flow_filter(), None, ownership=own)
    drive(pipe, files, quiet=quiet or index != 0)  # worker 0 reads everything: its bar is the run's
    owned.finish()
    if out_dir:
        sink.close()
    st = pipe.stats
    return WorkerResult(summary, st.files, dict(st.warnings), st.warning_details, dict(st.counters),
                        st.nanosecond, None if out_dir else sink.rows, sink.blocks if out_dir and blocks else None)


class _Tee:
    def __init__(self, consumers: list[Any]) -> None:
        self.consumers = consumers

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        rows = list(rows)
        for c in self.consumers:
            c.add(table, rows)


def run_jobs(files: list[str], jobs: int, *, out_dir: str | None, fmt: str = "csv", digits: int = 6,
             limits: Limits | None = None, filters: Any = None, quiet: bool = True,
             blocks: dict[str, Blocks] | None = None,
             ) -> tuple[SummaryBuilder, WorkerResult, dict[str, list[tuple]] | None]:
    """Run ``jobs`` workers over ``files``. With ``out_dir``, their part files are joined into
    ``out_dir/<table>.<fmt>`` (and ``blocks``, when given, receives where their blocks of rows are
    in the joined files); without, their rows come back in memory. Returns the merged summary
    builder, worker 0's result (files, warnings: the same in every worker) and the rows."""
    from .api import Filters

    filters = filters or Filters()
    limits = limits or Limits()
    parts = tempfile.mkdtemp(prefix="dissect-jobs-", dir=out_dir) if out_dir else None
    try:
        args = [(i, jobs, files, os.path.join(parts, str(i)) if parts else None, fmt, digits, limits, filters,
                 quiet, blocks is not None) for i in range(jobs)]
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs) as pool:
            results = pool.map(_worker, args)
        summary = results[0].summary
        for r in results[1:]:
            summary.merge(r.summary)
        rows: dict[str, list[tuple]] | None = None
        if parts and out_dir:
            for table in TABLES:
                name = f"{table}.{fmt}"
                joined = Blocks(table)
                with open(os.path.join(out_dir, name), "wb") as out:
                    for i in range(jobs):
                        with open(os.path.join(parts, str(i), name), "rb") as part:
                            skipped = len(part.readline()) if i and fmt == "csv" else 0  # each part's header
                            part_blocks = results[i].blocks
                            if part_blocks is not None:
                                joined.extend(part_blocks[table], out.tell() - skipped)
                            shutil.copyfileobj(part, out, 1 << 20)
                if blocks is not None:
                    blocks[table] = joined
        else:
            rows = {t: [r for res in results for r in (res.rows or {}).get(t, [])] for t in TABLES}
        return summary, results[0], rows
    finally:
        if parts:
            shutil.rmtree(parts, ignore_errors=True)
