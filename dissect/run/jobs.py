"""``--jobs N`` for N of 3 or more (and ``dissect.analyze(jobs=N)``, N of 2 or more): N processes
share the work of one analysis, each owning part of the sessions. (``dissect report --jobs 2`` is
:mod:`dissect.run.two_stage` instead: one process dissects, one writes.)

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

import contextlib
import multiprocessing
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from dissect.output.summary import SummaryBuilder
from dissect.output.writers import Blocks, MemoryCollector, ReportWriter
from dissect.protocols.tls import KeyLog
from dissect.records import TABLES
from dissect.run.core import Paths, RunResult, capture_files, dissect_files
from dissect.run.filters import Filters
from dissect.transport.limits import Limits
from dissect.transport.ownership import SHARED, Ownership


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
                    owner = owners[sid] = self.own.key_owner(eio_sid)
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


def _worker(args: tuple[int, int, list[str], str | None, str, int, Limits, Filters, bool, bool, KeyLog | None],
            ) -> tuple[RunResult, dict[str, list[tuple]] | None, dict[str, Blocks] | None]:
    """One worker: the run core over every file, keeping the rows of the flows it owns. Returns
    its result, its rows (when collecting in memory) and where its part files' blocks are."""
    index, count, files, out_dir, fmt, digits, limits, filters, quiet, blocks, keylog = args
    with contextlib.suppress(ValueError):  # (a Dask worker runs tasks in threads: no signals there)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool ends its workers with SIGTERM: no traceback
    own = Ownership(index, count)
    builder = SummaryBuilder()
    # Part files are written aside and renamed into place when complete: a task retried after its
    # worker died (Dask) writes them again from the start, and a half-written part is never read.
    final = out_dir
    if out_dir:
        out_dir = f"{out_dir}.{uuid.uuid4().hex}.part"
    writer: Any = ReportWriter(out_dir, fmt, digits, blocks) if out_dir else MemoryCollector()
    owned = OwnedRows(_Tee([writer, builder]), own)
    # worker 0's progress bar is the run's: every worker reads every packet
    result = dissect_files(files, [owned], filters=filters, limits=limits, quiet=quiet or index != 0,
                           ownership=own, summary=False, keylog=keylog)
    owned.finish()
    result.builder = builder
    if out_dir and final:
        writer.close()
        if os.path.isdir(final):  # an earlier attempt of this task finished but its result was lost
            shutil.rmtree(final)
        os.replace(out_dir, final)
        return result, None, writer.blocks if blocks else None
    return result, writer.rows, None


def append_file(src: Any, dst: Any) -> None:
    """The rest of ``src`` written at ``dst``'s position (binary files; ``dst`` not opened for
    appending), by the kernel where it can (``os.copy_file_range``: no trip through this
    process), else in 1 MiB reads."""
    dst.flush()
    offset = src.tell()
    copy = getattr(os, "copy_file_range", None)
    if copy is not None:
        try:
            while True:
                n = copy(src.fileno(), dst.fileno(), 1 << 30, offset)
                if n <= 0:
                    dst.seek(0, os.SEEK_END)
                    return
                offset += n
        except OSError:  # not supported here (another file system, an old kernel): by hand
            src.seek(offset)
            dst.seek(0, os.SEEK_END)
    shutil.copyfileobj(src, dst, 1 << 20)


class _Tee:
    def __init__(self, consumers: list[Any]) -> None:
        self.consumers = consumers

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        rows = list(rows)
        for c in self.consumers:
            c.add(table, rows)


WorkerResult = tuple[RunResult, dict[str, list[tuple]] | None, dict[str, Blocks] | None]
#: Runs the workers: ``mapper(_worker, args)`` returns their results in the order of ``args``
#: (a process pool here, a Dask cluster in :mod:`dissect.run.dask`).
Mapper = Callable[[Callable[[Any], WorkerResult], list[Any]], list[WorkerResult]]


def _pool_mapper(jobs: int) -> Mapper:
    def mapper(fn: Callable[[Any], WorkerResult], args: list[Any]) -> list[WorkerResult]:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs) as pool:
            return pool.map(fn, args)

    return mapper


def run_jobs(paths: Paths, jobs: int, *, out_dir: str | None = None, fmt: str = "csv", digits: int = 6,
             limits: Limits | None = None, filters: Filters | None = None, quiet: bool = True,
             blocks: dict[str, Blocks] | None = None, keylog: KeyLog | None = None,
             mapper: Mapper | None = None) -> tuple[RunResult, dict[str, list[tuple]] | None]:
    """Run ``jobs`` workers over the captures of ``paths`` (a process pool, or ``mapper``). With
    ``out_dir``, their part files are joined into ``out_dir/<table>.<fmt>`` (and ``blocks``, when
    given, receives where their blocks of rows are in the joined files); without, their rows come
    back in memory. Returns the merged result and the rows (None when written)."""
    files = capture_files(paths)
    filters = filters or Filters()
    limits = limits or Limits()
    parts = tempfile.mkdtemp(prefix="dissect-jobs-", dir=out_dir) if out_dir else None
    try:
        args = [(i, jobs, files, os.path.join(parts, str(i)) if parts else None, fmt, digits, limits, filters,
                 quiet, blocks is not None, keylog) for i in range(jobs)]
        results = (mapper or _pool_mapper(jobs))(_worker, args)
        merged = results[0][0]
        for i in range(1, len(results)):
            merged.merge_worker(results[i][0])
            results[i] = (RunResult(), results[i][1], results[i][2])  # its builder merged: freed
        rows: dict[str, list[tuple]] | None = None
        if parts and out_dir:
            # sio_broadcasts is made here, from every worker's events: its one part is the parent's
            made = ReportWriter(os.path.join(parts, str(jobs)), fmt, digits, blocks is not None)
            made.add("sio_broadcasts", merged.broadcasts())
            made.close()
            sources = [(str(i), results[i][2]) for i in range(jobs)]
            for table in TABLES:
                name = f"{table}.{fmt}"
                joined = Blocks(table)
                here = [(str(jobs), made.blocks if blocks is not None else None)] if table == "sio_broadcasts" \
                    else sources
                # the first part becomes the table's file (a rename: its bytes are not copied), the
                # others are appended to it, without their CSV header
                first_dir, first_blocks = here[0]
                target = os.path.join(out_dir, name)
                os.replace(os.path.join(parts, first_dir, name), target)
                if first_blocks is not None:
                    joined.extend(first_blocks[table], 0)
                with open(target, "r+b") as out:
                    out.seek(0, os.SEEK_END)
                    for part_dir, part_blocks in here[1:]:
                        with open(os.path.join(parts, part_dir, name), "rb") as part:
                            skipped = len(part.readline()) if fmt == "csv" else 0  # each part's header
                            if part_blocks is not None:
                                joined.extend(part_blocks[table], out.tell() - skipped)
                            append_file(part, out)
                if blocks is not None:
                    blocks[table] = joined
        else:
            rows = {t: [r for res in results for r in (res[1] or {}).get(t, [])] for t in TABLES}
            rows["sio_broadcasts"] = list(merged.broadcasts())
        return merged, rows
    finally:
        if parts:
            shutil.rmtree(parts, ignore_errors=True)
