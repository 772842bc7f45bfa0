"""The one adapter from rows to pandas: record NamedTuples in, DataFrames out.

Timestamps travel through dissect as integer nanoseconds; here, at the edge, they become UNIX epoch
seconds as floats (the contract: docs/REPORTS.md in the source repository). A float64 holds about
0.24 us of resolution at today's epoch, so the exact nanosecond values are written to CSV by
:mod:`dissect.output.writers` instead.

Missing values are pandas' own, never a sentinel: integer columns with gaps are ``Int64`` (``<NA>``),
and a missing text value is NaN (None in an ``object`` column with pandas 2) in every text column
of every table, an empty text included: the CSV writes both as an empty cell, so ``analyze()`` and
``Analysis.from_dir`` of its report give the same frames. ``anomaly`` is missing on a clean row,
``sio_type`` on an Engine.IO packet without a Socket.IO packet. The text columns with a handful of
values (:data:`CATEGORY_COLUMNS`) are pandas ``category``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import pandas as pd

from dissect.records import TABLES, VOCABULARY_COLUMNS, column_types, ts_columns

if TYPE_CHECKING:
    from dissect.output.writers import Blocks

TABLE_NAMES = tuple(TABLES)

# pandas dtypes that keep missing values as NaN/None rather than a sentinel.
_NULLABLE_INT = "Int64"
# Text: pandas 3's "str" (missing is NaN); pandas 2 keeps Python objects (missing is None).
_TEXT: Any = "str" if int(pd.__version__.split(".", 1)[0]) >= 3 else object

#: Text columns whose values come from a small vocabulary: pandas ``category`` (the categories are
#: the values present, sorted).
CATEGORY_COLUMNS = frozenset({
    "direction", "layer", "opcode_name", "eio_type", "sio_type", "transport", "app_protocol",
    "tls_version", "close",
})


def frame(table: str, rows: Iterable[tuple]) -> pd.DataFrame:
    """A DataFrame of ``rows`` (NamedTuples of ``table``) with the contract's columns."""
    cls = TABLES[table]
    columns = list(cls._fields)  # type: ignore[attr-defined]
    df = pd.DataFrame.from_records(list(rows), columns=columns)
    for col in ts_columns(cls):
        df[col] = pd.to_numeric(df[col], errors="coerce") / 1e9
    return _tidy(cls, df)


def empty(table: str) -> pd.DataFrame:
    return frame(table, [])


def _tidy(cls: type, df: pd.DataFrame) -> pd.DataFrame:
    """Give integer columns with gaps a nullable integer dtype instead of float, text columns one
    missing value (NaN, never ``''``) and the low-cardinality ones the ``category`` dtype."""
    ts_cols = ts_columns(cls)  # already float seconds
    for col, text in column_types(cls).items():
        if col not in df.columns:
            continue
        if text.startswith("int") and "None" in text and col not in ts_cols:
            try:
                df[col] = df[col].astype(_NULLABLE_INT)  # type: ignore[call-overload]
            except (TypeError, OverflowError, ValueError):
                # A value past int64 (a hostile 64-bit length field): keep Python ints.
                df[col] = df[col].astype(object)
        elif text.startswith("str"):
            df[col] = text_column(df[col], col in CATEGORY_COLUMNS)
    return df


def text_column(s: pd.Series, category: bool = False) -> pd.Series:
    """A text column with missing and empty values as pandas' missing value; ``category`` or text.

    (Values that are not text, such as a number a CSV reader guessed, become their text.)
    """
    values = s.astype(object)
    present = values.notna() & (values != "")
    values = values.where(present, None)
    if category:
        return values.map(lambda v: v if v is None or isinstance(v, str) else str(v)).astype("category")
    if _TEXT is object:
        return values.map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return values.astype(_TEXT)


@dataclass(repr=False)
class Analysis:
    """The tables of one analysis as DataFrames, plus ``summary`` (the dict of summary.json).

    >>> a = dissect.analyze("captures/ws_basic.pcap")
    >>> a.ws_frames.groupby("opcode_name").size()
    """

    sessions: pd.DataFrame = field(default_factory=lambda: empty("sessions"))
    handshakes: pd.DataFrame = field(default_factory=lambda: empty("handshakes"))
    http: pd.DataFrame = field(default_factory=lambda: empty("http"))
    ws_frames: pd.DataFrame = field(default_factory=lambda: empty("ws_frames"))
    ws_messages: pd.DataFrame = field(default_factory=lambda: empty("ws_messages"))
    sio_packets: pd.DataFrame = field(default_factory=lambda: empty("sio_packets"))
    sio_sockets: pd.DataFrame = field(default_factory=lambda: empty("sio_sockets"))
    sio_broadcasts: pd.DataFrame = field(default_factory=lambda: empty("sio_broadcasts"))
    summary: dict[str, Any] = field(default_factory=dict)
    # table -> k when only every k-th row was loaded (Analysis.from_dir with max_rows)
    sampled: dict[str, int] = field(default_factory=dict)
    # table -> where its writer put its blocks of rows, with their times (from_dir with blocks)
    blocks: dict[str, Blocks] = field(default_factory=dict)

    def __repr__(self) -> str:
        """A short summary: capture files, time span, and each table's row count (not the rows)."""
        files = [f.get("path") for f in self.summary.get("files") or [] if isinstance(f, dict)]
        span = _span(self.summary.get("capture") or {}, self.sessions)
        lines = [f"<Analysis of {len(files)} capture file(s){': ' + ', '.join(map(str, files[:3])) if files else ''}"
                 f"{f' and {len(files) - 3} more' if len(files) > 3 else ''}"]
        if span:
            lines.append(f"  {span}")
        width = max(len(n) for n in TABLE_NAMES)
        for name in TABLE_NAMES:
            n = len(self.table(name))
            note = f" (sampled: 1 row in {self.sampled[name]})" if name in self.sampled else ""
            lines.append(f"  {name:<{width}}  {n:>9,} row{'s' if n != 1 else ''}{note}")
        lines.append("  .summary: summary.json as a dict; .tables(): the DataFrames by name>")
        return "\n".join(lines)

    def table(self, name: str) -> pd.DataFrame:
        if name not in TABLE_NAMES:
            raise KeyError(f"no table {name!r}; tables are {', '.join(TABLE_NAMES)}")
        df: pd.DataFrame = getattr(self, name)
        return df

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: self.table(name) for name in TABLE_NAMES}

    @classmethod
    def from_rows(cls, rows: Mapping[str, Iterable[tuple]], summary: dict[str, Any]) -> Analysis:
        tables: dict[str, Any] = {name: frame(name, rows.get(name, ())) for name in TABLE_NAMES}
        return cls(**tables, summary=summary)

    @classmethod
    def from_dir(cls, directory: str, max_rows: int | None = None,
                 blocks: Mapping[str, Blocks] | None = None) -> Analysis:
        """Load a report written by ``dissect report --out DIR`` (CSV or JSON lines).

        ``max_rows``: a CSV table with more rows is read in chunks keeping a systematic sample
        (every k-th row) of at most that many, so memory stays bounded; ``sampled`` then maps
        the table to its step k. With the ``blocks`` its writer recorded (``ReportWriter.blocks``)
        a table is sampled by whole blocks instead (every k-th block of consecutive rows, read
        by seeking to it: nothing else of the file is parsed).
        """
        import json

        out: dict[str, Any] = {}
        sampled: dict[str, int] = {}
        for name in TABLE_NAMES:
            csv_path = os.path.join(directory, f"{name}.csv")
            jsonl_path = os.path.join(directory, f"{name}.jsonl")
            table_blocks = (blocks or {}).get(name)
            if table_blocks is not None and max_rows is not None and sum(table_blocks.rows) > max_rows:
                path = csv_path if os.path.exists(csv_path) else jsonl_path
                out[name], sampled[name] = read_blocks(path, name, table_blocks, max_rows)
            elif os.path.exists(csv_path):
                out[name], step = read_csv_sampled(csv_path, name, max_rows)
                if step > 1:
                    sampled[name] = step
            elif os.path.exists(jsonl_path):
                out[name] = read_jsonl(jsonl_path, name)
            elif os.path.exists(os.path.join(directory, f"{name}.parquet")):
                df, step = read_parquet_sampled(os.path.join(directory, f"{name}.parquet"), max_rows)
                out[name] = _tidy(TABLES[name], df)
                if step > 1:
                    sampled[name] = step
            else:
                out[name] = empty(name)
        summary_path = os.path.join(directory, "summary.json")
        summary: dict[str, Any] = {}
        if os.path.exists(summary_path):
            with open(summary_path, encoding="utf-8") as f:
                summary = json.load(f)
        a = cls(**out, summary=summary)
        a.sampled = sampled
        a.blocks = dict(blocks or {})
        return a


def _span(capture: Mapping[str, Any], sessions: pd.DataFrame) -> str:
    """The capture's time span in UTC (ISO 8601), from summary.json or else the sessions table."""
    first, last = capture.get("ts_first"), capture.get("ts_last")
    if (first is None or last is None) and len(sessions):
        first, last = sessions["ts_first"].min(), sessions["ts_last"].max()
    try:
        a, b = float(first), float(last)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    if a != a or b != b:
        return ""
    return f"{iso_utc(a)} to {iso_utc(b)} ({b - a:,.3f} s)"


def iso_utc(ts: float) -> str:
    """Epoch seconds as UTC ISO 8601 to the microsecond (``2026-01-02T03:04:05.123456Z``)."""
    import datetime as dt

    try:
        return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, OSError, ValueError):
        return f"{ts}"


def read_csv_sampled(path: str, table: str, max_rows: int | None) -> tuple[pd.DataFrame, int]:
    """(table, step): the whole CSV, or every ``step``-th row when it has more than ``max_rows``."""
    if max_rows is None:
        return read_csv(path, table), 1
    with open(path, "rb") as f:
        lines = sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b"")) - 1
    if lines <= max_rows:
        return read_csv(path, table), 1
    step = -(-lines // max_rows)
    parts = []
    # (no low_memory=False here: with it pandas reads the whole file before the first chunk)
    for chunk in pd.read_csv(path, keep_default_na=False, na_values=[""], chunksize=20_000):
        parts.append(chunk.iloc[(-chunk.index[0]) % step :: step].copy())  # a view would pin the chunk
    return _typed(table, pd.concat(parts, ignore_index=True)), step


def read_blocks(path: str, table: str, blocks: Blocks, max_rows: int) -> tuple[pd.DataFrame, int]:
    """(table, step): every ``step``-th of the ``blocks`` of a CSV or JSON-lines table with more
    than ``max_rows`` rows (at most ``max_rows`` rows), each read from its byte offset to the
    next block's."""
    import io

    rows = blocks.rows
    step = max(2, -(-sum(rows) // max_rows))
    while len(rows) > step and sum(rows[::step]) > max_rows:  # blocks differ in size
        step += 1
    csv = path.endswith(".csv")
    offsets = blocks.offsets
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        parts = [f.readline()] if csv else []  # the header
        for i in range(0, len(offsets), step):
            end = offsets[i + 1] if i + 1 < len(offsets) else size
            f.seek(offsets[i])
            parts.append(f.read(end - offsets[i]))
    data = io.BytesIO(b"".join(parts))
    df = read_csv(data, table) if csv else read_jsonl(data, table)
    return df.iloc[:max_rows], step  # one block may hold more than a tiny max_rows


def read_parquet_sampled(path: str, max_rows: int | None) -> tuple[pd.DataFrame, int]:
    """(table, step) from a Parquet file, sampled like :func:`read_csv_sampled`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pa.set_memory_pool(pa.system_memory_pool())  # gives memory back, unlike the default pool
    f = pq.ParquetFile(path, pre_buffer=False)
    rows = f.metadata.num_rows
    if max_rows is None or rows <= max_rows:
        return f.read().to_pandas(), 1
    step = -(-rows // max_rows)
    parts, seen = [], 0
    for batch in f.iter_batches(batch_size=20_000, use_threads=False):
        chunk = batch.to_pandas()
        parts.append(chunk.iloc[(-seen) % step :: step].copy())
        seen += len(chunk)
    return pd.concat(parts, ignore_index=True), step


def read_csv(source: str | IO[bytes], table: str) -> pd.DataFrame:
    """Read a table's CSV (a path or bytes) back with the same dtypes :func:`frame` gives."""
    return _typed(table, pd.read_csv(source, keep_default_na=False, na_values=[""], low_memory=False))


def read_jsonl(source: str | IO[bytes], table: str) -> pd.DataFrame:
    """Read a table's JSON lines (a path or bytes) back with the contract's columns."""
    df = pd.read_json(source, lines=True, dtype=False)
    return _tidy(TABLES[table], df.reindex(columns=list(TABLES[table]._fields)))  # type: ignore[attr-defined]


def _typed(table: str, df: pd.DataFrame) -> pd.DataFrame:
    cls = TABLES[table]
    for col, text in column_types(cls).items():
        if col in df.columns and text.startswith("str"):
            df[col] = df[col].astype(object).where(df[col].notna(), None)
            if col not in VOCABULARY_COLUMNS:
                # Undo the writer's formula neutralisation (writers.csv_text).
                df[col] = df[col].map(lambda v: v[1:] if isinstance(v, str) and v[:1] == "'" else v)
    return _tidy(cls, df)
