"""The rows of a table over time, for the plot of activity: from the rows when the table was read
whole, from the blocks its writer recorded when it was sampled (so every row still counts); and
the clock-like bucket widths they are counted in."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from dissect.report.html.text import numeric

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

# Points per block when the activity plot spreads a block's rows over its time span.
_BLOCK_POINTS = 8


def activity(a: Analysis, table: str) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """direction -> (times in seconds, weights or None) of every row of ``table`` for a plot
    over time. From the rows when the table was read whole; when it was sampled, from the
    blocks its writer recorded (``ReportWriter.blocks``: each block's rows spread evenly over
    its first to last time, its client-to-server count apart)."""
    from dissect.output.writers import ACTIVITY_COLUMNS

    blocks = (getattr(a, "blocks", None) or {}).get(table)
    if table in a.sampled and blocks is not None and len(blocks.t_first) == len(blocks.rows):
        t0 = np.frombuffer(blocks.t_first, dtype=np.float64)
        t1 = np.frombuffer(blocks.t_last, dtype=np.float64)
        rows = np.frombuffer(blocks.rows, dtype=np.int64)
        c2s = np.frombuffer(blocks.c2s, dtype=np.int64)
        k = np.arange(_BLOCK_POINTS)
        t = (t0[:, None] + (t1 - t0)[:, None] * ((k + 0.5) / _BLOCK_POINTS)).ravel()

        def spread(n: np.ndarray) -> np.ndarray:
            # n rows over the block's points in whole rows (the first n % K points one more).
            return (n[:, None] // _BLOCK_POINTS + (k[None, :] < (n % _BLOCK_POINTS)[:, None])).ravel()

        return {"c2s": (t, spread(c2s)), "s2c": (t, spread(rows - c2s))}
    df = a.table(table)
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    if len(df):
        for direction in ("c2s", "s2c"):
            t = numeric(df.loc[df["direction"] == direction, ACTIVITY_COLUMNS[table]])
            out[direction] = (t[~np.isnan(t)], None)
    return out


TIME_BUCKETS: tuple[tuple[float, str], ...] = tuple(
    (n * scale, f"{n} {unit}")
    for scale, unit, steps in (
        (1e-6, "µs", (1, 2, 5, 10, 20, 50, 100, 200, 500)),
        (1e-3, "ms", (1, 2, 5, 10, 20, 50, 100, 200, 500)),
        (1.0, "s", (1, 2, 5, 10, 15, 30)),
        (60.0, "min", (1, 2, 5, 10, 15, 30)),
        (3600.0, "h", (1, 2, 3, 6, 12)),
        (86400.0, "d", (1, 2, 7, 14, 30, 90, 180, 365)),
    )
    for n in steps
)
"""The widths the plot over time counts in, in seconds, with their names: clock-like steps."""


def time_bucket(span_s: float, bins: int) -> tuple[float, str]:
    """The narrowest of :data:`TIME_BUCKETS` that covers ``span_s`` seconds in at most ``bins``
    buckets: (width in seconds, its name, "10 ms"). Past a year, whole years."""
    if not (span_s > 0 and math.isfinite(span_s)):
        return 1e-3, "1 ms"  # one instant
    need = span_s / max(bins, 1)
    for width, name in TIME_BUCKETS:
        if width >= need:
            return width, name
    years = math.ceil(need / (365 * 86400.0))
    return years * 365 * 86400.0, f"{years} years"
