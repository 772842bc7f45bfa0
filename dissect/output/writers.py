"""Report writers: rows stream from the pipeline to CSV or JSON-lines files in batches.

Rows are formatted by hand, one generated function per table (built once from the record's type
hints): ``csv.writer`` costs more per row than all of the parsing. Timestamps, integer nanoseconds
inside dissect, are written as exact decimal epoch seconds with 6 or 9 digits (the capture's
precision). Missing values are empty cells. Text cells are quoted as RFC 4180 says, and cells that
a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a leading apostrophe.
"""

from __future__ import annotations

import functools
import json
import math
import os
from array import array
from collections.abc import Callable, Iterable
from operator import countOf, itemgetter
from typing import IO, Any

from dissect import fastpaths
from dissect.records import TABLES, VOCABULARY_COLUMNS, column_types, ts_columns

# A cell starting with one of these gets a leading apostrophe; "'" is in the set so that reading
# back (tables.read_csv drops one leading apostrophe) restores every value exactly.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_text(s: str) -> str:
    """One CSV text cell: neutralised against formula injection, quoted when needed."""
    if not s:
        return s
    if s[0] in _FORMULA_START:
        s = "'" + s
    if "," in s or '"' in s or "\n" in s or "\r" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def ts_text(ns: int | None, digits: int) -> str:
    if ns is None:
        return ""
    if digits == 9:
        return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"
    us = ns // 1000
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def float_text(x: float | None) -> str:
    if x is None or x != x or math.isinf(x):
        return ""
    return repr(round(x, 6))


def _kind(hint: str) -> str:
    hint = hint.replace(" ", "")
    if hint.startswith("bool"):
        return "bool"
    if hint.startswith("int"):
        return "int"
    if hint.startswith("float"):
        return "float"
    return "str"


def _cell(i: int, name: str, hint: str, ts_cols: set[str], digits: int) -> str:
    """The f-string replacement field(s) for column ``i`` of a row unpacked into ``_0, _1, ...``."""
    v = f"_{i}"
    optional = "None" in hint
    if name in ts_cols:
        # The same packet time appears in several rows and tables: each is formatted once.
        cell = f"_T.get({v}) or _ts({v})"
        return f"{{'' if {v} is None else ({cell})}}" if optional else f"{{{cell}}}"
    kind = _kind(hint)
    if kind == "int":
        return f"{{'' if {v} is None else {v}}}" if optional else f"{{{v}}}"
    if kind == "bool":
        return f"{{_B[{v}]}}"
    if kind == "float":
        return f"{{_float({v})}}"
    if name in VOCABULARY_COLUMNS:
        return f"{{'' if {v} is None else {v}}}" if optional else f"{{{v}}}"
    if name in _REPEATING:  # namespaces, event names, sids, anomaly tags: memoised
        return f"{{'' if not {v} else (_M.get({v}) or _memo({v}))}}"
    return f"{{'' if not {v} else _text({v})}}"


def csv_kinds(table: str) -> bytes:
    """Each column's kind for the compiled formatter (dissect/compiled/csv_rows.pxi), decided as
    :func:`_cell` decides its f-string field."""
    cls = TABLES[table]
    ts_cols = set(ts_columns(cls))
    out = []
    for name, hint in column_types(cls).items():
        optional = "None" in hint
        kind = _kind(hint)
        if name in ts_cols:
            out.append("T" if optional else "t")
        elif kind == "int":
            out.append("I" if optional else "i")
        elif kind in ("bool", "float"):
            out.append(kind[0])
        elif name in VOCABULARY_COLUMNS:
            out.append("V" if optional else "v")
        else:
            out.append("s")
    return "".join(out).encode()


def batch_formatter(table: str, digits: int) -> Callable[[list[tuple]], bytes]:
    """A batch of rows of ``table`` to CSV lines (UTF-8 bytes): the compiled formatter when the
    compiled core is in use (fastpaths.COMPILED_CSV), else :func:`row_formatter`'s batch form."""
    fmt = row_formatter(table, digits)
    core = fastpaths.compiled_csv()
    if core is None:
        batch = fmt.batch  # type: ignore[attr-defined]
        return lambda rows: batch(rows).encode()
    cache = _TS_CACHE[digits]
    return functools.partial(core, csv_kinds(table), digits=digits, text_fn=csv_text, float_fn=float_text,
                             ts_fn=_ts_memo(cache, digits), bools=_BOOL)


def row_formatter(table: str, digits: int) -> Callable[[tuple], str]:
    """A function turning one row of ``table`` into one CSV line (with its newline).

    Generated once per table from the record's type hints: the row is unpacked into locals and
    written by a single f-string; only columns that can carry traffic text go through
    :func:`csv_text` (quoting and formula neutralisation).
    """
    cls = TABLES[table]
    ts_cols = set(ts_columns(cls))
    types = column_types(cls)
    names = ", ".join(f"_{i}" for i in range(len(types)))
    fields = [_cell(i, n, h, ts_cols, digits) for i, (n, h) in enumerate(types.items())]
    # Runs of columns whose values repeat from row to row (flags, vocabulary, opcodes, tags) are
    # formatted once per distinct combination: one tuple lookup instead of a cell each.
    helpers: list[str] = []
    cells: list[str] = []
    run: list[int] = []
    groupable = [n in _LOW_CARDINALITY or _kind(h) == "bool" or n in VOCABULARY_COLUMNS
                 for n, h in types.items()]
    for i in range(len(fields) + 1):
        if i < len(fields) and groupable[i]:
            run.append(i)
            continue
        if len(run) >= 2:
            g = len(helpers)
            key = "(" + ", ".join(f"_{j}" for j in run) + ",)"
            inner = ",".join(fields[j] for j in run)
            helpers.append(
                f"_G{g} = {{}}\n"
                f"def _g{g}(k):\n    {key[1:-2]}, = k\n    s = f\"{inner}\"\n"
                f"    if len(_G{g}) >= 4096:\n        _G{g}.clear()\n    _G{g}[k] = s\n    return s\n"
            )
            cells.append(f"{{_G{g}.get({key}) or _g{g}({key})}}")
        else:
            cells.extend(fields[j] for j in run)
        run = []
        if i < len(fields):
            cells.append(fields[i])
    line = ",".join(cells)
    src = "".join(helpers) + (
        f"def fmt(r):\n    {names}, = r\n    return f\"{line}\\n\"\n"
        # The batch form loops inside one call: no function call per row.
        f"def fmt_batch(rows):\n    out = []\n    app = out.append\n"
        f"    for {names}, in rows:\n        app(f\"{line}\\n\")\n    return ''.join(out)\n"
    )
    cache = _TS_CACHE[digits]
    env: dict[str, Any] = {"_float": float_text, "_text": csv_text, "_memo": _memo_text, "_M": _MEMO,
                           "_B": _BOOL, "_T": cache, "_ts": _ts_memo(cache, digits)}
    exec(src, env)  # noqa: S102 - generated from our own record definitions only
    fmt: Callable[[tuple], str] = env["fmt"]
    fmt.batch = env["fmt_batch"]  # type: ignore[attr-defined]
    return fmt


_BOOL = {True: "true", False: "false", None: ""}
_MEMO: dict[str, str] = {}
# Text columns whose values repeat from row to row (not previews, reasons, URLs or details).
_REPEATING = frozenset({"namespace", "event", "eio_sid", "anomaly", "client_ip", "server_ip", "source_file",
                        "method", "host", "upgrade"})


# Formatted timestamps by digits (6 or 9), shared by the tables' formatters; bounded.
_TS_CACHE: dict[int, dict[int, str]] = {6: {}, 9: {}}
_TS_CACHE_SIZE = 1 << 15


def _ts_memo(cache: dict[int, str], digits: int) -> Callable[[int], str]:
    unit, cut = (1, -9) if digits == 9 else (1000, -6)

    def ts(ns: int) -> str:
        s = str(ns // unit)
        # The decimal point placed into the digits: cheaper than dividing a 64-bit number twice.
        out = s[:cut] + "." + s[cut:] if ns >= 1_000_000_000 else ts_text(ns, digits)
        if len(cache) >= _TS_CACHE_SIZE:
            cache.clear()
        cache[ns] = out
        return out
    return ts


# Columns besides flags (bool) and vocabulary whose values take few distinct values.
_LOW_CARDINALITY = frozenset({"opcode", "close_code", "close_reason", "anomaly", "eio_version",
                              "namespace", "frames", "header_len", "attachment_index"})


def _memo_text(s: str) -> str:
    """:func:`csv_text`, remembered (bounded: forgotten wholesale past 10,000 strings)."""
    out = csv_text(s)
    if len(_MEMO) > 10_000:
        _MEMO.clear()
    _MEMO[s] = out
    return out


def json_value(name: str, v: Any, ts_cols: set[str]) -> Any:
    if v is None:
        return None
    if name in ts_cols:
        return v / 1e9
    if isinstance(v, float) and (v != v or math.isinf(v)):
        return None
    return v


class ReportWriter:
    """Writes each table to ``DIR/<table>.csv`` (or ``.jsonl``), appending batches as they come.

    Every table's file is created (with its header) even when it stays empty, so a consumer
    always finds the same set of files. With ``blocks`` (report.html wants them), rows are
    written in blocks of at most :data:`BLOCK_ROWS` and ``blocks[table]`` records where each
    block starts in the file, how many rows it has and when (compact arrays), so that
    report.html can later read back a sample of whole blocks without parsing the rest
    (:func:`dissect.output.tables.read_blocks`).
    """

    TABLES = tuple(TABLES)

    def __init__(self, directory: str, fmt: str = "csv", digits: int = 6, blocks: bool = False) -> None:
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"unknown format {fmt!r}")
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.fmt = fmt
        self.digits = digits
        self.files: dict[str, IO[bytes]] = {}
        self.formatters: dict[str, Callable[[list[tuple]], bytes]] = {}
        self.counts: dict[str, int] = dict.fromkeys(TABLES, 0)
        self.blocks: dict[str, Blocks] = {}
        self._offset: dict[str, int] = {}
        for table in TABLES:
            path = os.path.join(directory, f"{table}.{fmt}")
            f = open(path, "wb")  # noqa: SIM115 - closed in close()
            self.files[table] = f
            header = b""
            if fmt == "csv":
                header = (",".join(TABLES[table]._fields) + "\n").encode()  # type: ignore[attr-defined]
                f.write(header)
            self._offset[table] = len(header)
            if blocks:
                self.blocks[table] = Blocks(table)

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        f = self.files[table]
        rows = rows if isinstance(rows, list) else list(rows)
        n = len(rows)
        self.counts[table] += n
        if self.fmt == "csv":
            batch = self.formatters.get(table)
            if batch is None:
                batch = self.formatters[table] = batch_formatter(table, self.digits)
        else:
            json_batch = functools.partial(_json_lines, TABLES[table])
            batch = lambda rows: json_batch(rows).encode()  # noqa: E731
        blocks = self.blocks.get(table)
        if blocks is None or not n:  # no blocks wanted (no report.html): one piece
            f.write(batch(rows))
            return
        offset = self._offset[table]
        out: list[bytes] = []
        first = blocks.room  # the last block takes rows up to BLOCK_ROWS: blocks do not depend on batches
        if first:
            head = rows[:first]
            data = batch(head)
            blocks.grow(head)
            offset += len(data)
            out.append(data)
        for i in range(first, n, BLOCK_ROWS):
            block = rows[i : i + BLOCK_ROWS] if first or n > BLOCK_ROWS else rows
            data = batch(block)
            blocks.add(offset, block)
            offset += len(data)
            out.append(data)
        f.write(b"".join(out) if len(out) > 1 else out[0])  # one write a batch
        self._offset[table] = offset

    def direct_spec(self) -> dict[str, Any] | None:
        """What the compiled core needs to write this writer's CSV lines itself (dissect.pipeline:
        rows without tuples): CSV only; with blocks, each row's marks beside them."""
        if self.fmt != "csv":
            return None
        return {"csv": direct_csv(self.digits), "blocks": bool(self.blocks)}

    def add_formatted(self, table: str, rows: int, csv: Any, figures: Any, candidates: Any) -> None:
        """A batch of ``rows`` rows the compiled core wrote as CSV lines (``csv``: UTF-8, an object
        of the buffer protocol; with blocks, its ``marks``: :meth:`Blocks.add_marked`)."""
        if csv is None:
            raise ValueError("add_formatted: CSV lines were asked for")
        self.counts[table] += rows
        blocks = self.blocks.get(table)
        if blocks is not None:
            if getattr(csv, "marks", None) is None:
                raise ValueError("add_formatted: the rows' marks were asked for (blocks)")
            blocks.add_marked(self._offset[table], csv.marks)
            self._offset[table] += len(csv)
        self.files[table].write(csv)

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def direct_csv(digits: int) -> tuple[Any, ...]:
    """What the compiled core needs to write CSV lines as :class:`ReportWriter` writes them
    (dissect.pipeline, rows without tuples): (digits, ts_fn, text_fn, float_fn, kinds)."""
    kinds = {t: csv_kinds(t) for t in ("ws_frames", "ws_messages", "sio_packets")}
    return (digits, _ts_memo(_TS_CACHE[digits], digits), csv_text, float_text, kinds)


# Rows per block of a written table: the unit report.html samples (see ReportWriter).
BLOCK_ROWS = 256
# The tables whose activity over time report.html plots, and their time column.
ACTIVITY_COLUMNS = {"ws_frames": "ts", "ws_messages": "ts_first", "sio_packets": "ts"}


class Blocks:
    """The blocks of one written table: where each starts in the file (byte offset) and its
    row count; for the tables of :data:`ACTIVITY_COLUMNS` also the first and last time (UNIX
    seconds, as floats: a capture's timestamps may be anything) of
    the block's rows and how many of them go client to server, so that a plot of the activity
    over time can count every row, not just a sample."""

    __slots__ = ("offsets", "rows", "t_first", "t_last", "c2s", "_ts", "_dir", "_open", "_first")

    def __init__(self, table: str | None = None) -> None:
        # (arrays pickle as their bytes: blocks cross from --jobs workers to the parent)
        self.offsets = array("q")
        self.rows = array("q")
        self.t_first = array("d")
        self.t_last = array("d")
        self.c2s = array("q")
        cls = TABLES.get(table or "")
        fields = cls._fields if cls is not None and table in ACTIVITY_COLUMNS else ()  # type: ignore[attr-defined]
        self._ts = fields.index(ACTIVITY_COLUMNS[table]) if fields else -1  # type: ignore[index]
        self._dir = fields.index("direction") if fields else -1
        # The last block takes more rows (the next batch's first) while it has fewer than
        # BLOCK_ROWS: _open of them (0: none open), the first at time _first (ns).
        self._open = 0
        self._first = 0

    @property
    def room(self) -> int:
        """How many rows the last block still takes (0: none)."""
        return BLOCK_ROWS - self._open if self._open else 0

    def close(self) -> None:
        """The last block takes no more rows."""
        self._open = 0

    def add(self, offset: int, rows: list[tuple]) -> None:
        """A new block: ``rows``, written at byte ``offset``."""
        self.offsets.append(offset)
        self.rows.append(len(rows))
        self._open = len(rows) if len(rows) < BLOCK_ROWS else 0
        if self._ts >= 0:
            # Rows come (nearly) in time order: the first and last row's times stand for the
            # block's span (never None: records.py).
            self._first = rows[0][self._ts]
            a, b = self._first / 1e9, rows[-1][self._ts] / 1e9
            self.t_first.append(min(a, b))
            self.t_last.append(max(a, b))
            self.c2s.append(countOf(map(itemgetter(self._dir), rows), "c2s"))

    def grow(self, rows: list[tuple]) -> None:
        """The last block takes ``rows`` (at most its :attr:`room`), written right after it."""
        self._grow(len(rows), rows[-1][self._ts] if self._ts >= 0 else 0,
                   countOf(map(itemgetter(self._dir), rows), "c2s") if self._ts >= 0 else 0)

    def _grow(self, n: int, last: int, c2s: int) -> None:
        self.rows[-1] += n
        self._open = self._open + n if self._open + n < BLOCK_ROWS else 0
        if self._ts >= 0:
            a, b = self._first / 1e9, last / 1e9
            self.t_first[-1] = min(a, b)
            self.t_last[-1] = max(a, b)
            self.c2s[-1] += c2s

    def add_marked(self, base: int, marks: bytes) -> None:
        """The blocks of a batch of rows the compiled core wrote at byte ``base``, cut as
        :meth:`add` and :meth:`grow` cut rows: ``marks`` holds three int64 cells a row (where its
        line ends in the batch, its time in ns, 1 when it goes client to server;
        dissect/compiled/direct_rows.pxi)."""
        import numpy as np

        m = np.frombuffer(marks, dtype=np.int64).reshape(-1, 3)
        n = len(m)
        ends, ts, c2s = m[:, 0], m[:, 1], m[:, 2]
        first = min(self.room, n)
        if first:
            self._grow(first, int(ts[first - 1]), int(c2s[:first].sum()))
        if first == n:
            return
        starts = np.arange(first, n, BLOCK_ROWS)
        sizes = np.minimum(BLOCK_ROWS, n - starts)
        self.offsets.frombytes((base + np.where(starts > 0, ends[starts - 1], 0)).astype(np.int64).tobytes())
        self.rows.frombytes(sizes.astype(np.int64).tobytes())
        if self._ts >= 0:
            a, b = ts[starts] / 1e9, ts[starts + sizes - 1] / 1e9
            self.t_first.frombytes(np.minimum(a, b).tobytes())
            self.t_last.frombytes(np.maximum(a, b).tobytes())
            self.c2s.frombytes(np.add.reduceat(c2s[first:], starts - first).astype(np.int64).tobytes())
        self._open = int(sizes[-1]) if sizes[-1] < BLOCK_ROWS else 0
        self._first = int(ts[starts[-1]])

    def extend(self, other: Blocks, shift: int) -> None:
        """Append ``other``'s blocks, their offsets moved by ``shift`` bytes."""
        self.offsets.extend(o + shift for o in other.offsets)
        for name in ("rows", "t_first", "t_last", "c2s"):
            getattr(self, name).extend(getattr(other, name))


def _json_lines(cls: Any, rows: list[tuple]) -> str:
    names = cls._fields
    ts_cols = set(ts_columns(cls))
    dumps = json.dumps
    return "".join(
        dumps({n: json_value(n, v, ts_cols) for n, v in zip(names, r, strict=True)}, ensure_ascii=False) + "\n"
        for r in rows
    )


class ParquetWriter:
    """Writes each table to ``DIR/<table>.parquet`` (needs pyarrow: ``wiredissect[parquet]``).

    Columns and types are those of the DataFrames (timestamps as float epoch seconds); rows are
    buffered into row groups of ``group_rows``. An integer past int64 (a hostile 64-bit length)
    is written as null; its row's ``anomaly`` already says why.
    """

    TABLES = tuple(TABLES)

    def __init__(self, directory: str, group_rows: int = 16_384) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            from dissect.errors import DissectError

            raise DissectError("--format parquet needs pyarrow: pip install 'wiredissect[parquet]'") from None
        os.makedirs(directory, exist_ok=True)
        # The system allocator gives memory back; pyarrow's default pool keeps it.
        pa.set_memory_pool(pa.system_memory_pool())
        self.pa = pa
        self.group_rows = group_rows
        self.counts: dict[str, int] = dict.fromkeys(TABLES, 0)
        self.buffers: dict[str, list[tuple]] = {t: [] for t in TABLES}
        self.schemas = {t: parquet_schema(t) for t in TABLES}
        self.writers = {t: pq.ParquetWriter(os.path.join(directory, f"{t}.parquet"), self.schemas[t])
                        for t in TABLES}

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        buf = self.buffers[table]
        before = len(buf)
        buf.extend(rows)
        self.counts[table] += len(buf) - before
        if len(buf) >= self.group_rows:
            self._flush(table)

    def _flush(self, table: str) -> None:
        rows = self.buffers[table]
        if not rows:
            return
        pa = self.pa
        schema = self.schemas[table]
        ts_cols = set(ts_columns(TABLES[table]))
        arrays = []
        for i, field in enumerate(schema):
            col = [r[i] for r in rows]
            if field.name in ts_cols:
                col = [None if v is None else v / 1e9 for v in col]
            elif pa.types.is_integer(field.type):
                col = [v if v is None or -(1 << 63) <= v < (1 << 63) else None for v in col]
            arrays.append(pa.array(col, type=field.type))
        self.writers[table].write_table(pa.Table.from_arrays(arrays, schema=schema))
        self.buffers[table] = []

    def close(self) -> None:
        for table, w in self.writers.items():
            self._flush(table)
            w.close()


def parquet_schema(table: str) -> Any:
    """The Arrow schema of ``table``: the record's columns with the DataFrames' types."""
    import pyarrow as pa

    cls = TABLES[table]
    ts_cols = set(ts_columns(cls))
    kinds = {"int": pa.int64(), "bool": pa.bool_(), "float": pa.float64(), "str": pa.string()}
    return pa.schema([(name, pa.float64() if name in ts_cols else kinds[_kind(hint)])
                      for name, hint in column_types(cls).items()])


class MemoryCollector:
    """Keeps every row in lists; used by :func:`dissect.analyze` to build DataFrames."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple]] = {t: [] for t in TABLES}

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        self.rows[table].extend(rows)
