"""Values as text of the page: traffic strings escaped for its HTML or for a plotly label, JSON safe
inside a ``<script>`` element, numbers, numeric columns and UTC times."""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from dissect.report.terminal import safe_text

_JS_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def esc(s: Any, limit: int | None = 200) -> str:
    """Traffic text for the page's HTML: control characters shown escaped, then HTML-escaped."""
    return html.escape(safe_text(s, limit), quote=True)


def plot_text(s: Any, limit: int | None = 80) -> str:
    """Traffic text for a plotly label or hover text (rendered as text, never as markup)."""
    return html.escape(safe_text(s, limit), quote=False)


def script_json(obj: Any) -> str:
    """JSON safe to place inside a ``<script>`` element."""
    text = obj if isinstance(obj, str) else json.dumps(obj, allow_nan=False)
    for ch, rep in _JS_ESCAPES.items():
        text = text.replace(ch, rep)
    return text


def numeric(s: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for missing values."""
    return np.asarray(pd.to_numeric(s, errors="coerce").astype("float64"), dtype=np.float64)


def utc_text(ts: float | None, digits: int = 3) -> str:
    """A capture timestamp (seconds) as UTC ``YYYY-MM-DD HH:MM:SS.mmm`` (``digits`` decimals of
    the second, 0-6); empty when missing."""
    if ts is None or (isinstance(ts, float) and math.isnan(ts)):
        return ""
    try:
        t = _dt.datetime.fromtimestamp(float(ts), tz=_dt.timezone.utc)
    except (OverflowError, ValueError, OSError):  # a capture's timestamps may be anything
        return f"{float(ts):.6g} s"
    text = t.strftime("%Y-%m-%d %H:%M:%S.%f")
    return text[: len(text) - 6 + digits - (digits == 0)]


def value_text(v: Any) -> str:
    """A table cell as text: empty when missing, whole floats without ``.0``, 6 significant digits."""
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.6g}"
    return str(v)


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v == "" or (isinstance(v, float | np.floating) and math.isnan(v))


def ms_text(v: Any) -> str:
    """A duration in milliseconds to three significant digits (whole milliseconds from 1 s on),
    never in exponent notation: ``0.0264``, ``3.98``, ``10.5``, ``752``, ``1,235``; empty when
    missing."""
    if _missing(v):
        return ""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(x):
        return str(x)
    if abs(x) < 1000:
        x = float(f"{x:.3g}")  # 99.96 -> 100, not 100.0
    a = abs(x)
    if a >= 100 or a == 0:
        return f"{x:,.0f}"
    decimals = min(6, 2 - math.floor(math.log10(a)))
    return f"{x:.{decimals}f}"


def count_text(v: Any) -> str:
    """A count (packets, bytes, rows) with thousands separators: ``35,860``; empty when missing."""
    if _missing(v):
        return ""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{int(x):,}" if x.is_integer() else f"{x:,.6g}"
