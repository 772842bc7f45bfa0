"""The figures summary.json takes from one batch of a table: what :class:`SummaryBuilder` counts.

:class:`ColumnCounts` takes each figure from its column (a batch given column-wise: a report's
DataFrames, or row tuples through :class:`RowColumns`): the reference. :class:`RowCounts` is the
compiled core's (``dissect/compiled/summary_counts.pxi``, switch ``fastpaths.COMPILED_SUMMARY``):
every figure of a batch of row tuples in one walk, no column made; a figure the C code leaves (a
cell of an uncommon type in a total or a distribution) comes from the column, as in the reference.
Both give the same figures; ``tests/test_compiled.py`` compares the summaries they make.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, NamedTuple, Protocol

from dissect import fastpaths
from dissect.output.distribution import count_cells, count_combinations, finite_values, to_number


class FanoutCandidates(Protocol):
    """What takes a batch's sio_broadcasts candidates (dissect.output.broadcasts.FanoutCandidates)."""

    def add_columns(self, cols: Mapping[str, Sequence[Any]]) -> None: ...

    def add_rows(self, rows: list[tuple], fields: Sequence[str]) -> None: ...

    def add_arrays(self, cells: tuple[bytes, bytes, bytes, bytes], sockets: list[tuple[Any, Any, str]],
                   kinds: list[tuple[str, Any]]) -> None: ...

__all__ = ["ColumnCounts", "Figures", "FormattedCounts", "RowColumns", "RowCounts", "column_total", "true_count"]


def column_total(col: Sequence[Any]) -> int:
    """The sum of an integer column, missing cells skipped."""
    try:
        total = sum(col)  # plain ints: the common case, in C
        if total == total:  # not NaN
            return int(total)
    except TypeError:
        pass
    return sum(int(v) for v in map(to_number, col) if v is not None)


def true_count(col: Sequence[Any]) -> int:
    """How many cells are true (True or 1)."""
    try:
        return list(col).count(True)
    except TypeError:
        return sum(1 for x in col if x is True or x == 1)


class RowColumns(Mapping[str, Sequence[Any]]):
    """Columns of a batch of rows, each taken out (in C) only when asked for: a table's figures
    use a few of its columns."""

    def __init__(self, fields: Sequence[str], rows: Sequence[tuple]) -> None:
        self.index = {f: i for i, f in enumerate(fields)}
        self.rows = rows
        self.cache: dict[str, list[Any]] = {}

    def __getitem__(self, name: str) -> list[Any]:
        col = self.cache.get(name)
        if col is None:
            col = self.cache[name] = list(map(itemgetter(self.index[name]), self.rows))
        return col

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


class Figures(NamedTuple):
    """The figures of a table's batch (column names): Counters of combinations of cells and of
    cells, integer totals, true cells, and the finite values of distributions."""

    combos: tuple[tuple[str, ...], ...] = ()
    cells: tuple[str, ...] = ()
    totals: tuple[str, ...] = ()
    trues: tuple[str, ...] = ()
    values: tuple[str, ...] = ()


class ColumnCounts:
    """Each figure of a batch from its column (the reference)."""

    def __init__(self, cols: Mapping[str, Sequence[Any]]) -> None:
        self.cols = cols

    def combos(self, *names: str) -> Mapping[tuple[Any, ...], int]:
        return count_combinations(*(self.cols[n] for n in names))

    def cells(self, name: str) -> Mapping[Any, int]:
        return count_cells(self.cols[name])

    def total(self, name: str) -> int:
        return column_total(self.cols[name])

    def true(self, name: str) -> int:
        return true_count(self.cols[name])

    def values(self, name: str) -> list[Any]:
        return finite_values(self.cols[name])

    def add_candidates(self, fc: FanoutCandidates) -> None:
        """The batch's sio_broadcasts candidates (sio_packets rows) into ``fc``."""
        fc.add_columns(self.cols)


class RowCounts(ColumnCounts):
    """The figures of a batch of row tuples counted by the compiled core in one walk."""

    def __init__(self, fields: Sequence[str], rows: list[tuple], figures: Figures, got: tuple[list[Any], ...]) -> None:
        super().__init__(RowColumns(fields, rows))  # for a figure the C code left
        self.fields = fields
        self.rows = rows
        self.got: dict[tuple[str, Any], Any] = {}
        for kind, names, results in zip(figures._fields, figures, got, strict=True):
            for name, result in zip(names, results, strict=True):
                if result is not None:
                    self.got[kind, name] = result

    @classmethod
    def count(cls, fields: Sequence[str], rows: list[tuple], figures: Figures) -> RowCounts | None:
        """The figures of ``rows``, or None when the compiled core is off or leaves the batch."""
        compiled = fastpaths.compiled_summary()
        if compiled is None or type(rows) is not list:
            return None
        index = {f: i for i, f in enumerate(fields)}
        try:
            got = compiled(rows, len(fields), tuple(tuple(index[n] for n in c) for c in figures.combos),
                           tuple(index[n] for n in figures.cells), tuple(index[n] for n in figures.totals),
                           tuple(index[n] for n in figures.trues), tuple(index[n] for n in figures.values))
        except Exception:  # noqa: BLE001 - a cell the C code cannot count (unhashable...): the Python code decides
            return None
        return None if got is None else cls(fields, rows, figures, got)

    def combos(self, *names: str) -> Mapping[tuple[Any, ...], int]:
        got = self.got.get(("combos", names))
        return super().combos(*names) if got is None else got

    def cells(self, name: str) -> Mapping[Any, int]:
        got = self.got.get(("cells", name))
        return super().cells(name) if got is None else got

    def total(self, name: str) -> int:
        got = self.got.get(("totals", name))
        return super().total(name) if got is None else got

    def true(self, name: str) -> int:
        got = self.got.get(("trues", name))
        return super().true(name) if got is None else got

    def values(self, name: str) -> list[Any]:
        got = self.got.get(("values", name))
        return super().values(name) if got is None else got

    def add_candidates(self, fc: FanoutCandidates) -> None:
        fc.add_rows(self.rows, self.fields)


class FormattedCounts(ColumnCounts):
    """The figures of a batch of rows the compiled core made without tuples (``figures``: what
    DirectRows.take counted, by (kind, column names); dissect/compiled/direct_rows.pxi, switch
    fastpaths.COMPILED_DIRECT_ROWS), and its sio_broadcasts candidates. Every figure asked for is
    there: there are no columns to fall back on."""

    def __init__(self, figures: Mapping[tuple[str, Any], Any], candidates: tuple[Any, ...] | None) -> None:
        super().__init__({})
        self.figures = figures
        self.candidates = candidates

    def combos(self, *names: str) -> Mapping[tuple[Any, ...], int]:
        return self.figures["combos", names]

    def cells(self, name: str) -> Mapping[Any, int]:
        return self.figures["cells", name]

    def total(self, name: str) -> int:
        return self.figures["total", name]

    def true(self, name: str) -> int:
        return self.figures["true", name]

    def values(self, name: str) -> list[Any]:
        return self.figures["values", name]

    def add_candidates(self, fc: FanoutCandidates) -> None:
        if self.candidates is not None:
            ts, digest, socket, kind, sockets, kinds = self.candidates
            fc.add_arrays((ts, digest, socket, kind), sockets, kinds)
