"""``--jobs N`` for N of 3 or more, 2 or more with the compiled core (and ``dissect.analyze(jobs=N)``,
N of 2 or more): N processes share the work of one analysis, each owning part of the sessions.
(``dissect report --jobs 2`` in pure Python is :mod:`dissect.run.two_stage` instead: one process
dissects, one writes; ``dissect.cli.two_stages``.)

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
rows as a part (:class:`dissect.run.parts.PartWriter`, as a ``--dask`` task does); every session's
rows are in one part, so the parent merges the parts in session order and merges the summaries. The
rows are those of ``--jobs 1``, grouped by session_id (one process's order within a session;
summary.json says ``row_order: sessions``, docs/REPORTS.md "Row order").
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from typing import Any

from dissect.output.summary import SummaryBuilder
from dissect.output.writers import Blocks, MemoryCollector
from dissect.pipeline import direct_spec
from dissect.protocols.tls import KeyLog
from dissect.records import SESSION_TABLES
from dissect.run.core import Paths, RunResult, capture_files, dissect_files
from dissect.run.filters import Filters
from dissect.run.parts import PartWriter, merge_parts
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

    def direct_spec(self) -> dict[str, Any] | None:
        """Rows without tuples (dissect.pipeline) as the inner consumer takes them: they are only
        made for the flows this worker dissects and not shared (the pipeline refuses those)."""
        spec = getattr(self.inner, "direct_spec", None)
        return spec() if spec is not None else None

    def add_formatted(self, table: str, rows: int, csv: Any, figures: Any, candidates: Any) -> None:
        self.inner.add_formatted(table, rows, csv, figures, candidates)

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


def _worker(args: tuple[int, int, list[str], str | None, str, int, Limits, Filters, bool, KeyLog | None, bool],
            ) -> WorkerResult:
    """One worker: the run core over every file, keeping the rows of the flows it owns. Returns
    its result, and its rows (when collecting in memory) or where its part is (``timed``: with
    the times of its blocks, for report.html)."""
    index, count, files, out_dir, fmt, digits, limits, filters, quiet, keylog, timed = args
    with contextlib.suppress(ValueError):  # (a Dask worker runs tasks in threads: no signals there)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool ends its workers with SIGTERM: no traceback
    own = Ownership(index, count)
    builder = SummaryBuilder()
    # A part (dissect.run.parts) holds this worker's rows grouped by session; it appears whole under
    # a name of its own or not at all, and the parent reads only the parts its workers returned.
    writer: Any = PartWriter(out_dir, fmt, digits, f"worker-{index}", timed=timed) if out_dir else MemoryCollector()
    owned = OwnedRows(_Tee([writer, builder]), own)
    # worker 0's progress bar is the run's: every worker reads every packet
    result = dissect_files(files, [owned], filters=filters, limits=limits, quiet=quiet or index != 0,
                           ownership=own, summary=False, keylog=keylog)
    owned.finish()
    result.builder = builder
    if out_dir:
        return result, None, writer.close()
    return result, writer.rows, None


class _Tee:
    def __init__(self, consumers: list[Any]) -> None:
        self.consumers = consumers

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        rows = list(rows)
        for c in self.consumers:
            c.add(table, rows)

    def direct_spec(self) -> dict[str, Any] | None:
        """What the consumers together take of rows without tuples (dissect.pipeline): None when
        one takes only tuples, or two want CSV lines."""
        return direct_spec(self.consumers)

    def add_formatted(self, table: str, rows: int, csv: Any, figures: Any, candidates: Any) -> None:
        for c in self.consumers:
            c.add_formatted(table, rows, csv, figures, candidates)


WorkerResult = tuple[RunResult, dict[str, list[tuple]] | None, str | None]  # (result, rows | None, part | None)
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
    ``out_dir``, their parts are merged into ``out_dir/<table>.<fmt>`` (and ``blocks``, when
    given, receives where the blocks of rows are in those files); without, their rows come
    back in memory. Returns the merged result and the rows (None when written)."""
    files = capture_files(paths)
    filters = filters or Filters()
    limits = limits or Limits()
    parts = tempfile.mkdtemp(prefix="dissect-jobs-", dir=out_dir) if out_dir else None
    try:
        args = [(i, jobs, files, os.path.join(parts, str(i)) if parts else None, fmt, digits, limits, filters,
                 quiet, keylog, blocks is not None) for i in range(jobs)]
        results = (mapper or _pool_mapper(jobs))(_worker, args)
        merged = results[0][0]

        def merge_results() -> dict[str, Sequence[tuple]]:
            """The workers' results merged into ``merged``, and the run's sio_broadcasts."""
            for i in range(1, len(results)):
                merged.merge_worker(results[i][0])
                results[i] = (RunResult(), results[i][1], results[i][2])  # its builder merged: freed
            return {"sio_broadcasts": merged.broadcasts()}

        rows: dict[str, list[tuple]] | None = None
        if parts and out_dir:
            # every session's rows are in one part: merged in session order (REPORTS.md, Row order),
            # while a thread merges the results (the copying is the kernel's: it holds no GIL)
            written = [r[2] for r in results if r[2]]
            with ThreadPoolExecutor(1) as pool:
                made = pool.submit(merge_results)
                _counts, where = merge_parts(written, out_dir, fmt, digits, made.result)
            if blocks is not None:
                blocks.update(where)
        else:
            broadcasts = merge_results()["sio_broadcasts"]
            # the same order in memory: grouped by session_id, each worker's order within a session
            by_session = itemgetter(0)
            rows = {t: sorted((r for res in results for r in (res[1] or {}).get(t, [])), key=by_session)
                    for t in SESSION_TABLES}
            rows["sio_broadcasts"] = list(broadcasts)
        merged.row_order = "sessions"
        return merged, rows
    finally:
        if parts:
            shutil.rmtree(parts, ignore_errors=True)
