"""Bounded-memory statistics for summary.json: :class:`Distribution` (count, min, max, percentiles)
and :class:`CappedCounter` (counts of traffic-derived keys), with the cell helpers they count with.

Memory bounds
-------------
Distributions (handshake durations per layer, HTTP durations, ack latencies, message sizes) keep
their exact values in an ``array('d')`` up to :data:`EXACT_LIMIT` (1,000,000) values; percentiles
are then exact (linear interpolation between closest ranks, as ``numpy.percentile``). Past that the
values move to a log-bucket histogram with 1 % relative accuracy (DDSketch style: bucket ``i`` holds
values in ``(g**(i-1), g**i]`` with ``g = 1.02``), so a 10M-message capture costs a few thousand
buckets instead of 80 MB; ``min``, ``max`` and ``count`` stay exact, and ``method`` says which of
``"exact"`` and ``"log-histogram"`` produced the percentiles.

Counters keyed by traffic-derived strings (event names, namespaces, HTTP methods, anomaly kinds ...)
keep at most :data:`COUNTER_LIMIT` distinct keys; later new keys are counted under ``"(other)"``.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

__all__ = [
    "COUNTER_LIMIT",
    "EXACT_LIMIT",
    "OTHER",
    "CappedCounter",
    "Distribution",
    "cell_key",
    "count_cells",
    "count_combinations",
    "finite_values",
    "json_float",
    "to_number",
]

#: Values a :class:`Distribution` keeps exactly before it moves to the log histogram.
EXACT_LIMIT = 1_000_000
#: Distinct keys a :class:`CappedCounter` keeps; later new keys count under :data:`OTHER`.
COUNTER_LIMIT = 10_000
#: The key a :class:`CappedCounter` counts new keys under once it is full.
OTHER = "(other)"

#: Exact distributions of at most this many values get their percentiles without numpy.
SMALL_EXACT = 20_000

_GAMMA = 1.02
_LOG_GAMMA = math.log(_GAMMA)


def json_float(x: float | None, digits: int = 6) -> float | None:
    """``x`` rounded to ``digits`` decimals for JSON; NaN and infinities become None."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return None
    return round(x, digits)


def to_number(x: Any) -> float | None:
    """A float from a cell, or None for a missing value (None, NaN, pd.NA)."""
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def cell_key(x: Any) -> str:
    """A counter key from a cell: missing values are ``""``; integral floats lose their ``.0``."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        if math.isnan(x):
            return ""
        if x.is_integer():
            return str(int(x))
    return str(x)


def finite_values(values: Iterable[Any]) -> list[Any]:
    """The numbers of ``values`` a :class:`Distribution` counts: missing cells, NaN and infinities
    dropped."""
    try:
        # Plain numbers (rows): drop missing cells and NaN without a call per cell.
        vals = [v for v in values if v is not None and v == v]
        if vals and (math.isinf(min(vals)) or math.isinf(max(vals))):
            vals = [v for v in vals if not math.isinf(v)]
    except TypeError:  # pd.NA and the like (DataFrame cells)
        vals = [f for f in map(to_number, values) if f is not None and not math.isinf(f)]
    return vals


def count_cells(values: Iterable[Any]) -> Counter[Any]:
    """Raw cell values counted in C; callers normalise only the distinct keys.

    A column holding one value throughout the batch (a transport, an empty anomaly, a missing
    close code: the common case) is counted by ``list.count``, which compares the same object
    by identity, instead of hashing every cell.
    """
    if _one_value(values):
        return Counter({values[0]: len(values)})
    return Counter(values)


def count_combinations(*cols: Sequence[Any]) -> Counter[tuple[Any, ...]]:
    """:func:`count_cells` of the rows' combinations of ``cols`` (equal-length columns)."""
    if all(_one_value(c) for c in cols):
        return Counter({tuple(c[0] for c in cols): len(cols[0])})
    return Counter(zip(*cols, strict=False))


def _one_value(col: Iterable[Any]) -> TypeGuard[list[Any]]:
    """A non-empty list whose cells are all the first one (three probes by identity first)."""
    if type(col) is not list or not col:
        return False
    first = col[0]
    return col[-1] is first and col[len(col) >> 1] is first and col.count(first) == len(col)


class CappedCounter:
    """A counter of string keys that keeps at most ``limit`` distinct keys (the rest: "(other)")."""

    __slots__ = ("counts", "limit")

    def __init__(self, limit: int = COUNTER_LIMIT) -> None:
        self.counts: dict[str, int] = {}
        self.limit = limit

    def add(self, key: str, n: int = 1) -> None:
        counts = self.counts
        if key in counts:
            counts[key] += n
        elif len(counts) < self.limit:
            counts[key] = n
        else:
            counts[OTHER] = counts.get(OTHER, 0) + n

    def update(self, keys: Iterable[str]) -> None:
        for k, n in Counter(keys).items():
            self.add(k, n)

    def update_cells(self, cells: Iterable[Any], missing: str = "") -> None:
        """Count raw cells under their :func:`cell_key` (``missing`` for empty ones)."""
        self.add_counts(count_cells(cells), missing)

    def add_counts(self, counts: Mapping[Any, int], missing: str = "") -> None:
        """:meth:`update_cells` of the cells' counts (:func:`count_cells`)."""
        for raw, n in counts.items():
            self.add(cell_key(raw) or missing, n)

    def total(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: CappedCounter) -> None:
        for k, n in other.counts.items():
            self.add(k, n)

    def sorted(self) -> dict[str, int]:
        """By key, for a stable JSON."""
        return {k: self.counts[k] for k in sorted(self.counts)}

    def top(self, n: int) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def percentiles(values: Sequence[float], ps: Sequence[float]) -> list[float]:
    """``numpy.percentile(values, ps)`` (its default "linear" method) of sorted, finite, non-NaN
    ``values`` (at least one), float for float: numpy's steps with Python's IEEE doubles (virtual
    index ``(n - 1) * p / 100``, the last value past the end, and numpy's ``_lerp``, which
    interpolates from the upper value when the fraction is 0.5 or more)."""
    n = len(values)
    out = []
    for p in ps:
        virtual = (n - 1) * (p / 100)
        below = math.floor(virtual)
        if virtual >= n - 1:
            a = b = values[-1]
            gamma = virtual + 1  # numpy's previous index is -1 there
        else:
            a, b = values[below], values[below + 1]
            gamma = virtual - below
        diff = b - a
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return out


def _negative_zero(values: array[float]) -> bool:
    """Whether ``values`` holds a -0.0 (its bits: the sign bit alone)."""
    return values.count(0.0) > 0 and array("Q", values.tobytes()).count(1 << 63) > 0


def _bucket_value(i: int) -> float:
    """The value histogram bucket ``i`` stands for (between 1.02**(i-1) and 1.02**i); past the
    float range (a value near 1.8e308): inf, which the quantiles clamp to the largest value seen."""
    try:
        return _GAMMA**i * (2.0 / (_GAMMA + 1.0))
    except OverflowError:
        return math.inf


class Distribution:
    """Count, min, max and percentiles of a stream of floats in bounded memory (module doc)."""

    __slots__ = ("exact", "pos", "neg", "zeros", "count", "lo", "hi", "exact_limit")

    def __init__(self, exact_limit: int = EXACT_LIMIT) -> None:
        self.exact: array[float] | None = array("d")
        self.pos: dict[int, int] = {}
        self.neg: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.exact_limit = exact_limit

    def extend(self, values: Iterable[Any]) -> None:
        self.add_finite(finite_values(values))

    def add_finite(self, vals: list[Any]) -> None:
        """Add the values :func:`finite_values` kept of a batch."""
        if not vals:
            return
        self.count += len(vals)
        self.lo = min(self.lo, min(vals))
        self.hi = max(self.hi, max(vals))
        if self.exact is not None:
            self.exact.extend(vals)
            if len(self.exact) <= self.exact_limit:
                return
            # Past the limit: move to the histogram straight from the array (a list of a million
            # floats would cost ~32 MB at once, and pymalloc keeps such memory).
            exact, self.exact = self.exact, None
            self._bucket(exact)
            return
        self._bucket(vals)

    def _bucket(self, vals: array[float] | Sequence[float]) -> None:
        """Count ``vals`` into the histogram: bucket ``ceil(log|v| / log g)`` (module doc). With
        numpy, however few: a value's bucket must not depend on the batch it came in."""
        import numpy as np

        a = np.frombuffer(vals, dtype=np.float64) if isinstance(vals, array) else np.asarray(vals, dtype=np.float64)
        self.zeros += int(np.count_nonzero(a == 0))  # (-0.0 too)
        for buckets, part in ((self.pos, a[a > 0]), (self.neg, -a[a < 0])):
            if len(part):
                index, counts = np.unique(np.ceil(np.log(part) / _LOG_GAMMA).astype(np.int64), return_counts=True)
                for i, n in zip(index.tolist(), counts.tolist(), strict=True):
                    buckets[i] = buckets.get(i, 0) + n

    def merge(self, other: Distribution) -> None:
        if other.count == 0:
            return
        if self.exact is not None and other.exact is not None:
            # extend() without its filter: other's values passed it already
            self.count += other.count
            self.lo = min(self.lo, other.lo)
            self.hi = max(self.hi, other.hi)
            self.exact.extend(other.exact)
            if len(self.exact) > self.exact_limit:
                exact, self.exact = self.exact, None
                self._bucket(exact)
            return
        self.count += other.count
        self.lo = min(self.lo, other.lo)
        self.hi = max(self.hi, other.hi)
        if self.exact is not None:
            self._bucket(self.exact)
            self.exact = None
        if other.exact is not None:
            self._bucket(other.exact)
        else:
            for i, c in other.pos.items():
                self.pos[i] = self.pos.get(i, 0) + c
            for i, c in other.neg.items():
                self.neg[i] = self.neg.get(i, 0) + c
            self.zeros += other.zeros

    @property
    def method(self) -> str:
        return "exact" if self.exact is not None else "log-histogram"

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Values at quantiles ``qs`` (0..1)."""
        if self.count == 0:
            return [None for _ in qs]
        if self.exact is not None:
            if len(self.exact) <= SMALL_EXACT and not _negative_zero(self.exact):
                # without numpy (the command line starts without it); numpy's partition orders
                # -0.0 and 0.0 its own way, so a -0.0 among the values goes to numpy
                small: list[float | None] = list(percentiles(sorted(self.exact), [q * 100 for q in qs]))
                return small
            import numpy as np

            arr = np.frombuffer(self.exact, dtype=np.float64)
            return [float(v) for v in np.percentile(arr, [q * 100 for q in qs])]
        # Histogram: walk the buckets in value order to the bucket holding each rank.
        buckets: list[tuple[float, int]] = [
            (-_bucket_value(i), c) for i, c in sorted(self.neg.items(), reverse=True)
        ]
        if self.zeros:
            buckets.append((0.0, self.zeros))
        buckets += [(_bucket_value(i), c) for i, c in sorted(self.pos.items())]
        out: list[float | None] = []
        for q in qs:
            rank = q * (self.count - 1)
            seen = 0
            value = buckets[-1][0]
            for v, c in buckets:
                seen += c
                if seen > rank:
                    value = v
                    break
            out.append(min(max(value, self.lo), self.hi))
        return out

    def summary(self, digits: int = 6) -> dict[str, Any]:
        p50, p90, p99 = self.quantiles((0.5, 0.9, 0.99))
        return {
            "count": self.count,
            "min": json_float(self.lo if self.count else None, digits),
            "p50": json_float(p50, digits),
            "p90": json_float(p90, digits),
            "p99": json_float(p99, digits),
            "max": json_float(self.hi if self.count else None, digits),
            "method": self.method,
        }
