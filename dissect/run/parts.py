"""Part files: a task's tables, written where the client can read them, merged by session.

A task of a split run (``--dask``) writes its rows with a :class:`PartWriter`: each table's rows
sorted by session_id (a session's rows keep the order they were made in), formatted as the report's
tables are (the report writer's own code: CSV without its header, JSON lines, or pickled rows for
Parquet), with an index (a record file, :func:`write_index`): where each session's rows are in the
file, and the writer's blocks of rows (report.html samples them). A task formats its rows as they
come and holds them as bytes per session, at most :data:`SPILL_BYTES`: beyond, they go to a *run*
(a directory ``0``, ``1``, ... of the part: a file and an index per table); the part's file
``runs`` says how many. The part is written under a name of its own (a directory: a temporary
name, renamed when complete; an object store, which has no rename: the final name, each object
appearing whole when closed, the runs written locally first), so a task that dies half-way (Dask
runs it again) leaves nothing the client reads: the client reads only the parts named by the
results it received.

:func:`merge_parts` (the client) streams the runs of every task's part into the report's tables in
session order: each session is in one part only (in its runs in order), so the tables hold the rows
of one process grouped by session_id (summary.json says ``row_order: sessions``). The runs' indexes
are read as they go (:func:`read_index`), so its memory is a buffer per run and the report's blocks
(report.html), not the rows nor the sessions. ``sio_broadcasts`` (no session_id: made at the end from every
task's events) is written after them.

Where the parts go is a directory, or an fsspec URL (``s3://bucket/dir``) where fsspec and the
backend are installed; every worker and the client must reach it.
"""

from __future__ import annotations

import heapq
import io
import os
import pickle
import shutil
import struct
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import IO, Any

from dissect.errors import DissectError
from dissect.output.report_dir import temp_dir
from dissect.output.writers import ACTIVITY_COLUMNS, BLOCK_ROWS, Blocks, ParquetWriter, ReportWriter, direct_csv
from dissect.records import SESSION_TABLES, TABLES

SPILL_BYTES = 64 << 20  # formatted rows a task holds before it writes them to a run
RUNS = "runs"  # a part's file naming how many runs (directories 0, 1, ...) it has
_COPY = 1 << 20
EXTRA_ROWS = 1 << 12  # rows of an extra table (sio_broadcasts) written at once
_OPEN_PARTS = 64  # part files kept open at once while merging
# A URL's file read ahead by this much (s3fs reads 50 MiB ahead by default: with a part file and an
# index open per task while merging, the client's memory would grow with the tasks).
READ_BLOCK = 1 << 20


# -- where: a directory or an fsspec URL --------------------------------------------------------------

def is_url(path: str) -> bool:
    return "://" in path


def _fs(path: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec comes with dask
        raise DissectError(f"{path}: a URL needs fsspec (pip install fsspec)") from None
    return fsspec.core.url_to_fs(path)


def join(base: str, *names: str) -> str:
    if is_url(base):
        return "/".join([base.rstrip("/"), *names])
    return os.path.join(base, *names)


def open_file(path: str, mode: str) -> IO[bytes]:
    if is_url(path):
        fs, p = _fs(path)
        if "r" in mode:
            return fs.open(p, mode, block_size=READ_BLOCK)
        return fs.open(p, mode)
    return open(path, mode)  # noqa: SIM115 - the caller closes it


def make_dirs(path: str) -> None:
    if is_url(path):
        fs, p = _fs(path)
        fs.makedirs(p, exist_ok=True)
    else:
        os.makedirs(path, exist_ok=True)


def rename(src: str, dst: str) -> None:
    if is_url(src):
        fs, a = _fs(src)
        fs.mv(a, _fs(dst)[1], recursive=True)
    else:
        os.rename(src, dst)


def remove_tree(path: str) -> None:
    if is_url(path):
        fs, p = _fs(path)
        if fs.exists(p):
            fs.rm(p, recursive=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


# -- a table's index ---------------------------------------------------------------------------------

#: One session of a table in a file: (session_id, start, end, rows, blocks), each block
#: (offset, rows, t_first, t_last, c2s) as :class:`dissect.output.writers.Blocks` records it.
Segment = tuple[int, int, int, int, list[tuple[int, int, float, float, int]]]
_HEAD = struct.Struct("<qqqqq")  # session_id, start, end, rows, blocks
_BLOCK = struct.Struct("<qqddq")  # offset, rows, t_first, t_last, c2s
_INDEX_MAGIC = b"dissect-part-index-1\n"


def write_index(f: IO[bytes], segments: Iterator[Segment]) -> None:
    """A part's index of one table: its sessions in order, read back one at a time (:func:`read_index`)."""
    f.write(_INDEX_MAGIC)
    out: list[bytes] = []
    for sid, start, end, rows, blocks in segments:
        out.append(_HEAD.pack(sid, start, end, rows, len(blocks)))
        out.extend(_BLOCK.pack(*b) for b in blocks)
        if len(out) >= 4096:
            f.write(b"".join(out))
            out.clear()
    f.write(b"".join(out))


def read_index(path: str) -> Iterator[Segment]:
    """The sessions of a part's index file, in order; only a buffer of it in memory."""
    with open_file(path, "rb") as f:  # buffered: open() and fsspec's files both are
        if f.read(len(_INDEX_MAGIC)) != _INDEX_MAGIC:
            raise DissectError(f"{path}: not a part file index")
        head, block = _HEAD.size, _BLOCK.size
        while True:
            data = f.read(head)
            if not data:
                return
            if len(data) < head:
                raise DissectError(f"{path}: a part file index ends early")
            sid, start, end, rows, nblocks = _HEAD.unpack(data)
            blocks = [_BLOCK.unpack(f.read(block)) for _ in range(nblocks)]
            yield sid, start, end, rows, blocks


class _Files:
    """Files opened for reading, at most ``_OPEN_PARTS`` at a time."""

    def __init__(self) -> None:
        self.open: OrderedDict[str, IO[bytes]] = OrderedDict()

    def get(self, path: str) -> IO[bytes]:
        f = self.open.pop(path, None)
        if f is None:
            if len(self.open) >= _OPEN_PARTS:
                self.open.popitem(last=False)[1].close()
            f = open_file(path, "rb")
        self.open[path] = f
        return f

    def close(self) -> None:
        for f in self.open.values():
            f.close()
        self.open.clear()


def _in_order(sources: Sequence[tuple[str, Iterator[Segment]]]) -> Iterator[tuple[int, int, Segment]]:
    """(session_id, source, segment) of every segment of ``sources``, by session_id (then source)."""
    def entries(s: int, segs: Iterator[Segment]) -> Iterator[tuple[int, int, Segment]]:
        return ((seg[0], s, seg) for seg in segs)

    return heapq.merge(*(entries(s, segs) for s, (_, segs) in enumerate(sources)), key=itemgetter(0, 1))


def merge_table(table: str, sources: Sequence[tuple[str, Iterator[Segment]]], out: IO[bytes], pos: int) -> Blocks:
    """Copy the sessions of ``sources`` (files with their sessions in order) into ``out`` (at byte
    ``pos``) in session order; sessions found in several sources keep the sources' order. Returns
    where the blocks of what was written are."""
    rb = Blocks(table)
    timed = table in ACTIVITY_COLUMNS
    files = _Files()
    copy = _Copy(out)
    try:
        for _sid, s, (_, start, end, _rows, blocks) in _in_order(sources):
            path = sources[s][0]
            copy.copy(files.get(path), path, start, end - start)
            shift = pos - start
            for offset, n, t_first, t_last, c2s in blocks:
                rb.offsets.append(offset + shift)
                rb.rows.append(n)
                if timed:
                    rb.t_first.append(t_first)
                    rb.t_last.append(t_last)
                    rb.c2s.append(c2s)
            pos += end - start
    finally:
        files.close()
    return rb


class _Copy:
    """Byte ranges of files into ``out``: by the kernel (``os.copy_file_range``) between local
    files, else read and written."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.fd: int | None = None
        if isinstance(out, io.BufferedWriter) and hasattr(os, "copy_file_range"):
            out.flush()  # (what it holds goes first; then the kernel writes at the file's position)
            self.fd = out.fileno()

    def copy(self, f: IO[bytes], path: str, start: int, left: int) -> None:
        if self.fd is not None and isinstance(f, io.BufferedReader):
            try:
                while left > 0:
                    done = os.copy_file_range(f.fileno(), self.fd, left, start)
                    if not done:
                        raise DissectError(f"{path}: a part file ends early ({left} bytes missing)")
                    start += done
                    left -= done
                return
            except OSError:  # not between these files (an old kernel, another file system): by hand
                self.fd = None
        if f.tell() != start:
            f.seek(start)
        while left > 0:
            data = f.read(min(left, _COPY))
            if not data:
                raise DissectError(f"{path}: a part file ends early ({left} bytes missing)")
            self.out.write(data)
            left -= len(data)


# -- the task side -------------------------------------------------------------------------------------

class _Capture:
    """Stands for a report writer's table file: keeps what the writer wrote last."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data = data

    def close(self) -> None:
        pass


class _Held:
    """One table's rows of one session, formatted, with their blocks (offsets from the first byte)."""

    __slots__ = ("chunks", "size", "rows", "blocks")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.rows = 0
        self.blocks: list[list[Any]] = []  # [offset, rows, t_first, t_last, c2s]

    def add(self, data: bytes, rows: int, blocks: list[list[Any]]) -> None:
        """``rows`` rows formatted as ``data``, with their ``blocks`` (offsets from data's first byte)."""
        last = self.blocks[-1] if self.blocks else None
        for b in blocks:
            b[0] += self.size
            if last is not None and last[1] + b[1] <= BLOCK_ROWS:  # small pieces of a session: one block
                last[1] += b[1]
                last[2] = min(last[2], b[2])
                last[3] = max(last[3], b[3])
                last[4] += b[4]
            else:
                self.blocks.append(b)
                last = b
        self.chunks.append(data)
        self.size += len(data)
        self.rows += rows


class _Formatter:
    """Rows of one session to bytes and blocks: the report writer's own formatting (CSV, JSON lines;
    its table files replaced by :class:`_Capture`), or pickled rows (Parquet)."""

    def __init__(self, fmt: str, digits: int) -> None:
        self.pickled = fmt == "parquet"
        self.aside = temp_dir("dissect-fmt-")
        self.writer = ReportWriter(self.aside, "csv" if self.pickled else fmt, digits, blocks=True)
        for f in self.writer.files.values():
            f.close()
        self.capture = _Capture()
        self.writer.files = dict.fromkeys(self.writer.files, self.capture)  # type: ignore[arg-type]

    def add(self, held: _Held, table: str, rows: list[tuple]) -> None:
        if self.pickled:
            data = pickle.dumps(rows, pickle.HIGHEST_PROTOCOL)
            new = [[0, len(rows), 0.0, 0.0, 0]]
        else:
            blocks = self.writer.blocks[table]
            before = len(blocks.offsets)
            self.writer.add(table, rows)
            blocks.close()  # (the next rows are another session's, written elsewhere)
            data = self.capture.data
            timed = len(blocks.t_first) > before
            first = blocks.offsets[before]
            new = [[blocks.offsets[b] - first, blocks.rows[b], blocks.t_first[b] if timed else 0.0,
                    blocks.t_last[b] if timed else 0.0, blocks.c2s[b] if timed else 0]
                   for b in range(before, len(blocks.offsets))]
            del blocks.offsets[before:], blocks.rows[before:]
            if timed:
                del blocks.t_first[before:], blocks.t_last[before:], blocks.c2s[before:]
        held.add(data, len(rows), new)

    def close(self) -> None:
        shutil.rmtree(self.aside, ignore_errors=True)


class PartWriter:
    """A consumer writing a task's rows as a part under ``target`` (module doc); :meth:`close`
    returns where the part is. Rows are formatted as they come (the timestamps they share across
    tables are then formatted once) and held as bytes per session; past ``spill_bytes`` they go to
    a run in a local temporary directory.

    Without ``timed`` (report.html's blocks not wanted: their times, from the rows), a CSV part
    also takes the lines the compiled core writes by session (dissect.pipeline, rows without
    tuples); its blocks then count rows only."""

    def __init__(self, target: str, fmt: str, digits: int, name: str, spill_bytes: int | None = None,
                 timed: bool = True) -> None:
        self.target = target
        self.fmt = fmt
        self.digits = digits
        self.timed = timed
        self.name = name
        self.spill_bytes = spill_bytes or SPILL_BYTES
        self.formatter = _Formatter(fmt, digits)
        self.held: dict[str, dict[int, _Held]] = {t: {} for t in SESSION_TABLES}
        self.size = 0
        self.tmp = temp_dir("dissect-part-")  # (a killed run's: removed by the next, report_dir)
        self.runs: list[str] = []
        tag = uuid.uuid4().hex[:12]
        self.final = join(target, f"{name}-{tag}")
        # A directory's runs are written aside in it and renamed when whole. An object store has no
        # rename (an fsspec "move" is a copy of every object; s3fs cannot move a prefix), but each
        # object appears whole when closed, and the name is this attempt's own: only a task's result
        # names it; there, the runs are written locally and copied at the end.
        if is_url(target):
            self.scratch = self.tmp
        else:
            self.scratch = join(target, f".tmp-{name}-{tag}")
            os.makedirs(self.scratch)

    def add(self, table: str, rows: Any) -> None:
        by_session: dict[int, list[tuple]] = {}
        for r in rows:
            got = by_session.get(r[0])
            if got is None:
                by_session[r[0]] = [r]
            else:
                got.append(r)
        held = self.held[table]
        for sid, session_rows in by_session.items():
            h = held.get(sid)
            if h is None:
                h = held[sid] = _Held()
            before = h.size
            self.formatter.add(h, table, session_rows)
            self.size += h.size - before
        if self.size >= self.spill_bytes:
            self._spill()

    def direct_spec(self) -> dict[str, Any] | None:
        """CSV lines by session from the compiled core, when the blocks' times are not wanted."""
        if self.fmt != "csv" or self.timed:
            return None
        return {"csv": direct_csv(self.digits), "grouped": True}

    def add_formatted(self, table: str, rows: int, csv: Any, figures: Any, candidates: Any) -> None:
        """A batch the compiled core wrote as CSV lines by session: ``csv`` is [(session_id, rows,
        bytes)]."""
        if csv is None or self.timed:
            raise ValueError("add_formatted: CSV lines by session, without blocks' times, were asked for")
        held = self.held[table]
        for sid, n, data in csv:
            h = held.get(sid)
            if h is None:
                h = held[sid] = _Held()
            h.add(data, n, [[0, n, 0.0, 0.0, 0]])
            self.size += len(data)
        if self.size >= self.spill_bytes:
            self._spill()

    def _spill(self) -> None:
        """The rows held, in session order, to a run: a file and an index per table."""
        directory = os.path.join(self.scratch, str(len(self.runs)))
        os.makedirs(directory)
        for table, held in self.held.items():
            records: list[Segment] = []
            with open(os.path.join(directory, table), "wb") as f:
                pos = 0
                for sid in sorted(held):
                    h = held[sid]
                    f.writelines(h.chunks)
                    records.append((sid, pos, pos + h.size, h.rows, [(b[0] + pos, b[1], b[2], b[3], b[4])
                                                                     for b in h.blocks]))
                    pos += h.size
            with open(os.path.join(directory, f"{table}.index"), "wb") as f:
                write_index(f, iter(records))
        self.runs.append(directory)
        self.held = {t: {} for t in SESSION_TABLES}
        self.size = 0

    def close(self) -> str:
        """Write the part (its runs, as they are: the client merges them) and return where it is."""
        try:
            if self.size or not self.runs:
                self._spill()
            if self.scratch == self.tmp:  # an object store: the runs copied there, object by object
                make_dirs(self.final)
                for k, directory in enumerate(self.runs):
                    make_dirs(join(self.final, str(k)))
                    for table in SESSION_TABLES:
                        for name in (table, f"{table}.index"):
                            with open(os.path.join(directory, name), "rb") as src, \
                                    open_file(join(self.final, str(k), name), "wb") as dst:
                                shutil.copyfileobj(src, dst, _COPY)
            with open_file(join(self.scratch if self.scratch != self.tmp else self.final, RUNS), "wb") as f:
                f.write(b"%d\n" % len(self.runs))
            if self.scratch != self.tmp:
                rename(self.scratch, self.final)
            return self.final
        finally:
            self.formatter.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


# -- the client side -----------------------------------------------------------------------------------

def _runs(part: str) -> int:
    """How many runs a part has (its file ``runs``)."""
    with open_file(join(part, RUNS), "rb") as f:
        text = f.read(32)
    if not text.strip().isdigit():
        raise DissectError(f"{part}: not a part (its runs file says {text[:20]!r})")
    return int(text)


def _sources(parts: Sequence[str], table: str) -> list[tuple[str, Iterator[Segment]]]:
    """The runs of ``parts`` holding ``table``, in order (a session in several runs of a part: in run order)."""
    return [(join(p, str(k), table), read_index(join(p, str(k), f"{table}.index")))
            for p in parts for k in range(_runs(p))]


Extra = Mapping[str, Sequence[tuple]] | Callable[[], Mapping[str, Sequence[tuple]] | None] | None


def merge_parts(parts: Sequence[str], out_dir: str, fmt: str, digits: int = 6,
                extra: Extra = None) -> tuple[dict[str, int], dict[str, Blocks]]:
    """Write the report's tables into ``out_dir``: the session tables from the ``parts`` of a
    run's tasks (in session order), the tables of ``extra`` (``sio_broadcasts``) from its rows
    (a callable: called once the session tables are written, so that they can be made meanwhile).
    Returns the rows per table and (CSV, JSON lines) where their blocks are."""
    counts: dict[str, int] = {}
    blocks: dict[str, Blocks] = {}
    if fmt == "parquet":
        parquet = ParquetWriter(out_dir)
        try:
            for table in SESSION_TABLES:
                counts[table] = _rows_into(parquet, table, _sources(parts, table))
            extra = (extra() if callable(extra) else extra) or {}
            for table, rows in extra.items():
                for start in range(0, len(rows), EXTRA_ROWS):
                    parquet.add(table, list(rows[start:start + EXTRA_ROWS]))
                counts[table] = len(rows)
        finally:
            parquet.close()
        return counts, blocks
    for table in SESSION_TABLES:
        with open(os.path.join(out_dir, f"{table}.{fmt}"), "wb") as out:
            header = (",".join(TABLES[table]._fields) + "\n").encode() if fmt == "csv" else b""  # type: ignore[attr-defined]
            out.write(header)
            blocks[table] = merge_table(table, _sources(parts, table), out, len(header))
        counts[table] = sum(blocks[table].rows)
    extra = (extra() if callable(extra) else extra) or {}
    if extra:
        aside = tempfile.mkdtemp(prefix=".dissect-extra-", dir=out_dir)
        try:
            writer = ReportWriter(aside, fmt, digits, blocks=True)
            for table, rows in extra.items():
                for start in range(0, len(rows), EXTRA_ROWS):  # in batches: rows made as they go
                    writer.add(table, list(rows[start:start + EXTRA_ROWS]))
            writer.close()
            for table, rows in extra.items():
                os.replace(os.path.join(aside, f"{table}.{fmt}"), os.path.join(out_dir, f"{table}.{fmt}"))
                counts[table] = len(rows)
                blocks[table] = writer.blocks[table]
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    return counts, blocks


def _rows_into(writer: Any, table: str, sources: Sequence[tuple[str, Iterator[Segment]]]) -> int:
    """Parquet: the pickled rows of every session, in session order, to ``writer``."""
    files = _Files()
    n = 0
    try:
        for _sid, s, (_, start, end, _rows, _blocks) in _in_order(sources):
            f = files.get(sources[s][0])
            if f.tell() != start:
                f.seek(start)
            data = io.BytesIO(f.read(end - start))
            while data.tell() < end - start:  # one pickle per batch of the session's rows
                rows = pickle.load(data)  # noqa: S301 - written by this run's tasks
                writer.add(table, rows)
                n += len(rows)
    finally:
        files.close()
    return n
