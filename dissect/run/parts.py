"""Part files: a task's tables, written where the client can read them, merged by session.

A task of a split run (``--dask``) writes its rows with a :class:`PartWriter`: each table's rows
sorted by session_id (a session's rows keep the order they were made in), formatted as the report's
tables are (the report writer's own code: CSV without its header, JSON lines, or pickled rows for
Parquet), with an index (:class:`Segments`): where each session's rows are in the file, and the
writer's blocks of rows (report.html samples them). A task holds at most ``spill_rows`` rows in
memory: beyond, they go to a sorted run in a local temporary directory, and the runs are merged
at the end. The part is written under a temporary name and renamed when complete, so a task that
dies half-way (Dask runs it again) leaves nothing the client reads: the client reads only the
parts named by the results it received.

:func:`merge_parts` (the client) streams the parts of every task into the report's tables in
session order: each session is in one part only, so the tables hold the rows of one process grouped
by session_id (summary.json says ``row_order: sessions``). The parts' indexes are read as they go
(:func:`read_index`), so its memory is a buffer per part and the report's blocks (report.html),
not the rows nor the sessions. ``sio_broadcasts`` (no session_id: made at the end from every
task's events) is written after them.

Where the parts go is a directory, or an fsspec URL (``s3://bucket/dir``) where fsspec and the
backend are installed; every worker and the client must reach it.
"""

from __future__ import annotations

import heapq
import itertools
import os
import pickle
import shutil
import struct
import tempfile
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import IO, Any

from dissect.errors import DissectError
from dissect.output.writers import ACTIVITY_COLUMNS, Blocks, ParquetWriter, ReportWriter
from dissect.records import SESSION_TABLES, TABLES

SPILL_ROWS = 200_000
_COPY = 1 << 20
_OPEN_PARTS = 64  # part files kept open at once while merging


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

class Segments:
    """Where the sessions of one table are in one file, in ascending session_id: each session's
    byte range and row count, and (CSV and JSON lines) the writer's blocks, the first of each
    session at ``first_block``."""

    __slots__ = ("sids", "starts", "ends", "rows", "first_block", "blocks")

    def __init__(self, table: str, blocks: bool = True) -> None:
        self.sids = array("q")
        self.starts = array("q")
        self.ends = array("q")
        self.rows = array("q")
        self.first_block = array("q")
        self.blocks: Blocks | None = Blocks(table) if blocks else None

    def __len__(self) -> int:
        return len(self.sids)

    def records(self) -> Iterator[Segment]:
        blocks = self.blocks
        n = len(self.sids)
        for k in range(n):
            found: list[tuple[int, int, float, float, int]] = []
            if blocks is not None:
                hi = self.first_block[k + 1] if k + 1 < n else len(blocks.offsets)
                timed = len(blocks.t_first) > 0
                for b in range(self.first_block[k], hi):
                    found.append((blocks.offsets[b], blocks.rows[b], blocks.t_first[b] if timed else 0.0,
                                  blocks.t_last[b] if timed else 0.0, blocks.c2s[b] if timed else 0))
            yield self.sids[k], self.starts[k], self.ends[k], self.rows[k], found


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


def merge_table(table: str, sources: Sequence[tuple[str, Iterator[Segment]]], out: IO[bytes], pos: int,
                segments: bool = True) -> Segments:
    """Copy the sessions of ``sources`` (files with their sessions in order) into ``out`` (at byte
    ``pos``) in session order; sessions found in several sources keep the sources' order. Returns
    the index of what was written (only its blocks unless ``segments``)."""
    result = Segments(table)
    rb = result.blocks
    assert rb is not None
    files = _Files()
    try:
        for sid, s, (_sid, start, end, rows, blocks) in _in_order(sources):
            path = sources[s][0]
            f = files.get(path)
            if f.tell() != start:
                f.seek(start)
            left = end - start
            while left > 0:
                data = f.read(min(left, _COPY))
                if not data:
                    raise DissectError(f"{path}: a part file ends early ({left} bytes missing)")
                out.write(data)
                left -= len(data)
            if segments:
                result.sids.append(sid)
                result.starts.append(pos)
                result.ends.append(pos + end - start)
                result.rows.append(rows)
                result.first_block.append(len(rb.offsets))
            shift = pos - start
            for offset, n, t_first, t_last, c2s in blocks:
                rb.offsets.append(offset + shift)
                rb.rows.append(n)
                if table in ACTIVITY_COLUMNS:
                    rb.t_first.append(t_first)
                    rb.t_last.append(t_last)
                    rb.c2s.append(c2s)
            pos += end - start
    finally:
        files.close()
    return result


# -- the task side -------------------------------------------------------------------------------------

def _write_run(directory: str, pending: dict[str, list[tuple]], fmt: str, digits: int) -> dict[str, Segments]:
    """One sorted run of ``pending`` rows into ``directory``: a file and an index per table."""
    index: dict[str, Segments] = {}
    by_session = itemgetter(0)
    if fmt == "parquet":  # pickled rows, one pickle a session
        os.makedirs(directory, exist_ok=True)
        for table, rows in pending.items():
            rows.sort(key=by_session)
            seg = index[table] = Segments(table, blocks=False)
            with open(os.path.join(directory, table), "wb") as f:
                for sid, group in itertools.groupby(rows, by_session):
                    chunk = list(group)
                    data = pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL)
                    seg.sids.append(sid)
                    seg.starts.append(f.tell())
                    seg.ends.append(f.tell() + len(data))
                    seg.rows.append(len(chunk))
                    f.write(data)
        return index
    # The tables' sessions are written session by session, every table's rows of one session in
    # turn: their timestamps repeat from table to table, and the writer formats each one once while
    # it is recent.
    sessions: list[tuple[int, int, str, list[tuple]]] = []
    for t, (table, rows) in enumerate(pending.items()):
        rows.sort(key=by_session)
        sessions.extend((sid, t, table, list(group)) for sid, group in itertools.groupby(rows, by_session))
        index[table] = Segments(table, blocks=False)
    sessions.sort(key=itemgetter(0, 1))
    writer = ReportWriter(directory, fmt, digits, blocks=True)
    try:
        for sid, _t, table, chunk in sessions:
            seg = index[table]
            seg.sids.append(sid)
            seg.first_block.append(len(writer.blocks[table].offsets))
            seg.rows.append(len(chunk))
            writer.add(table, chunk)
        for table, seg in index.items():
            seg.blocks = writer.blocks[table]
    finally:
        writer.close()
    for table, seg in index.items():
        size = os.path.getsize(os.path.join(directory, f"{table}.{fmt}"))
        offsets = seg.blocks.offsets if seg.blocks is not None else array("q")
        for k in range(len(seg.sids)):
            seg.starts.append(offsets[seg.first_block[k]])
            nxt = seg.first_block[k + 1] if k + 1 < len(seg.sids) else len(offsets)
            seg.ends.append(offsets[nxt] if nxt < len(offsets) else size)
    return index


class PartWriter:
    """A consumer writing a task's rows as a part under ``target`` (module doc); :meth:`close`
    returns where the part is."""

    def __init__(self, target: str, fmt: str, digits: int, name: str, spill_rows: int | None = None) -> None:
        self.target = target
        self.fmt = fmt
        self.digits = digits
        self.name = name
        self.spill_rows = spill_rows or SPILL_ROWS
        self.pending: dict[str, list[tuple]] = {t: [] for t in SESSION_TABLES}
        self.held = 0
        self.tmp = tempfile.mkdtemp(prefix="dissect-part-")
        self.runs: list[tuple[str, dict[str, Segments]]] = []

    def add(self, table: str, rows: Any) -> None:
        rows = rows if isinstance(rows, list) else list(rows)
        self.pending[table].extend(rows)
        self.held += len(rows)
        if self.held >= self.spill_rows:
            self._spill()

    def _spill(self) -> None:
        directory = os.path.join(self.tmp, str(len(self.runs)))
        self.runs.append((directory, _write_run(directory, self.pending, self.fmt, self.digits)))
        self.pending = {t: [] for t in SESSION_TABLES}
        self.held = 0

    def _run_file(self, directory: str, table: str) -> str:
        return os.path.join(directory, table if self.fmt == "parquet" else f"{table}.{self.fmt}")

    def close(self) -> str:
        """Write the part (merging the runs) and return where it is."""
        try:
            if self.held or not self.runs:
                self._spill()
            make_dirs(self.target)
            tag = uuid.uuid4().hex[:12]
            tmp = join(self.target, f".tmp-{self.name}-{tag}")
            make_dirs(tmp)
            for table in SESSION_TABLES:
                sources = [(self._run_file(d, table), index[table].records()) for d, index in self.runs]
                with open_file(join(tmp, table), "wb") as out:
                    seg = merge_table(table, sources, out, 0)
                with open_file(join(tmp, f"{table}.index"), "wb") as f:
                    write_index(f, seg.records())
            final = join(self.target, f"{self.name}-{tag}")
            rename(tmp, final)
            return final
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


# -- the client side -----------------------------------------------------------------------------------

def _sources(parts: Sequence[str], table: str) -> list[tuple[str, Iterator[Segment]]]:
    return [(join(p, table), read_index(join(p, f"{table}.index"))) for p in parts]


def merge_parts(parts: Sequence[str], out_dir: str, fmt: str, digits: int = 6,
                extra: dict[str, list[tuple]] | None = None) -> tuple[dict[str, int], dict[str, Blocks]]:
    """Write the report's tables into ``out_dir``: the session tables from the ``parts`` of a
    run's tasks (in session order), the tables of ``extra`` (``sio_broadcasts``) from its rows.
    Returns the rows per table and (CSV, JSON lines) where their blocks are."""
    counts: dict[str, int] = {}
    blocks: dict[str, Blocks] = {}
    extra = extra or {}
    if fmt == "parquet":
        parquet = ParquetWriter(out_dir)
        try:
            for table in SESSION_TABLES:
                counts[table] = _rows_into(parquet, table, _sources(parts, table))
            for table, rows in extra.items():
                parquet.add(table, rows)
                counts[table] = len(rows)
        finally:
            parquet.close()
        return counts, blocks
    for table in SESSION_TABLES:
        with open(os.path.join(out_dir, f"{table}.{fmt}"), "wb") as out:
            header = (",".join(TABLES[table]._fields) + "\n").encode() if fmt == "csv" else b""  # type: ignore[attr-defined]
            out.write(header)
            seg = merge_table(table, _sources(parts, table), out, len(header), segments=False)
        assert seg.blocks is not None
        blocks[table] = seg.blocks
        counts[table] = sum(seg.blocks.rows)
    if extra:
        aside = tempfile.mkdtemp(prefix=".dissect-extra-", dir=out_dir)
        try:
            writer = ReportWriter(aside, fmt, digits, blocks=True)
            for table, rows in extra.items():
                writer.add(table, rows)
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
            rows = pickle.loads(f.read(end - start))  # noqa: S301 - written by this run's tasks
            writer.add(table, rows)
            n += len(rows)
    finally:
        files.close()
    return n
