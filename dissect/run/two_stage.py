"""``--jobs 2`` in pure Python: one analysis in two processes, one after the other on the same rows.

This process reads and dissects, as with one process; a child process formats and writes the
tables and builds the summary from the rows it is handed. Row batches cross a pipe as pickled
columns: ``zip(*rows)`` and back are done in C, and a column of plain values pickles several times
faster than NamedTuple rows. The child takes the rows in the order they were made, so the files
are byte for byte those of one process. The pipe's buffer bounds what is in flight: a slow writer
holds the dissector back, and memory stays flat.

Measured on the benchmark capture: the dissecting side takes about 1.85 s plus 0.35 s handing
rows over, the writing side about 1.5 s, where one process took 3.4 s for both.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
from collections.abc import Callable, Iterable
from typing import Any

from dissect.errors import DissectError
from dissect.output.summary import SummaryBuilder
from dissect.protocols.tls import KeyLog
from dissect.run.core import Paths, RunResult, capture_files, dissect_files
from dissect.run.filters import Filters
from dissect.transport.limits import Limits

_END = b""
_STOPS = {signal.SIGINT, signal.SIGTERM}


class _Handover:
    """The consumer on the dissecting side: row batches, as columns, to the writing side.

    Batches go over in messages of about :data:`HANDOVER_ROWS` rows: a message per table
    would make the dissector wait for the writer at every table (the pipe holds little), one
    message per few thousand packets lets both sides work at once.
    """

    def __init__(self, conn: Any, proc: Any) -> None:
        self.conn = conn
        self.proc = proc
        self.pending: list[tuple[str, list[tuple]]] = []
        self.rows = 0

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        rows = rows if isinstance(rows, list) else list(rows)
        if rows:
            self.pending.append((table, list(zip(*rows, strict=True))))
            self.rows += len(rows)
            if self.rows >= HANDOVER_ROWS:
                self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending, self.rows = self.pending, [], 0
        try:
            self.conn.send_bytes(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
        except (OSError, EOFError):
            raise _writer_failed(self.conn, self.proc) from None


HANDOVER_ROWS = 8192


def _writer_failed(conn: Any, proc: Any) -> DissectError:
    """The writing side stopped: its own message when it sent one."""
    try:
        if conn.poll(1.0):
            kind, detail = conn.recv()
            if kind == "error":
                return DissectError(f"writing the tables failed: {detail}")
    except (OSError, EOFError, ValueError):
        pass
    proc.join(1.0)
    return DissectError(f"the process writing the tables ended unexpectedly (exit code {proc.exitcode})")


def _writing_side(conn: Any, parent_end: Any, make_writer: Callable[[], Any]) -> None:
    """The child: rows in, tables and summary out; then (summary, counts, blocks) back."""
    import gc

    # The fork copied the parent's end of the pipe too: closed here, the pipe reports the end of
    # the parent (even a killed one) as EOF instead of waiting forever.
    parent_end.close()

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent ends the child with SIGTERM: no traceback
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)  # blocked by the parent around the fork
    gc.set_threshold(50_000, *gc.get_threshold()[1:])  # as the pipeline does: rows are many objects
    try:
        writer = make_writer()
        summary = SummaryBuilder()
        loads = pickle.loads
        recv = conn.recv_bytes
        while True:
            data = recv()
            if data == _END:
                break
            for table, cols in loads(data):
                rows = list(zip(*cols, strict=True))
                writer.add(table, rows)
                summary.add(table, rows)
        for chunk in summary.broadcasts().chunks():  # made from every row, at the end
            writer.add("sio_broadcasts", chunk)
        writer.close()
        conn.send(("done", (summary, getattr(writer, "counts", {}), getattr(writer, "blocks", {}))))
    except Exception as e:  # noqa: BLE001 - reported by the parent as one line
        with contextlib.suppress(OSError):  # the parent may be gone already
            conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def run_two_stages(paths: Paths, make_writer: Callable[[], Any], *, filters: Filters | None = None,
                   limits: Limits | None = None, quiet: bool = True, keylog: KeyLog | None = None,
                   ) -> tuple[RunResult, dict[str, int], dict[str, Any]]:
    """:func:`dissect.run.local.run` with one writer, in two processes: ``make_writer()`` runs in the
    child. Returns the run's result (with the summary), the writer's row counts and blocks."""
    filters = filters or Filters()
    files = capture_files(paths)
    ctx = multiprocessing.get_context("fork")
    conn, child_conn = ctx.Pipe()
    proc = ctx.Process(target=_writing_side, args=(child_conn, conn, make_writer), daemon=True)
    # A signal between the fork and the child's own handlers would run the parent's handler in the
    # child (a traceback there): blocked around the fork, the child unblocks them once they are set.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    child_conn.close()
    finished = False
    try:
        handover = _Handover(conn, proc)
        result = dissect_files(files, [handover], filters=filters, limits=limits, quiet=quiet, summary=False,
                               keylog=keylog)
        handover.flush()
        try:
            conn.send_bytes(_END)
            kind, detail = conn.recv()
        except (OSError, EOFError):
            raise _writer_failed(conn, proc) from None
        if kind == "error":
            raise DissectError(f"writing the tables failed: {detail}")
        proc.join()
        finished = True
    finally:
        if not finished:
            proc.terminate()
            proc.join()
        conn.close()
    result.builder, counts, blocks = detail
    return result, counts, blocks
