"""``dissect diff``: compare a capture's analysis with a baseline report, within tolerances.

What is compared (timestamps, ports, session ids and other session-specific values never are):

- the row count of every table;
- counts by key columns: sessions by transport, app_protocol and close; handshakes by layer and ok;
  http by method and status; ws_frames and ws_messages by direction and opcode_name; sio_packets by
  namespace, sio_type and event;
- percentiles of durations: handshakes.duration_ms per layer, http.duration_ms and
  sio_packets.ack_latency_ms.

Counts may differ by ``max(count_tolerance, count_rel_tolerance * baseline)``; a duration
percentile by ``max(duration_rel_tolerance * baseline, duration_abs_tolerance_ms)`` (only upwards
with ``only_slower = true``). The tolerances come from the ``[diff]`` table of a rules file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dissect.records import TABLES
from dissect.report.check import DiffConfig, RuleResult, Rules, cell_text, diff_config

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "sessions": ("transport", "app_protocol", "close"),
    "handshakes": ("layer", "ok"),
    "http": ("method", "status"),
    "ws_frames": ("direction", "opcode_name"),
    "ws_messages": ("direction", "opcode_name"),
    "sio_packets": ("namespace", "sio_type", "event"),
}

# (table, duration column, grouping column or None)
DURATIONS: tuple[tuple[str, str, str | None], ...] = (
    ("handshakes", "duration_ms", "layer"),
    ("http", "duration_ms", None),
    ("sio_packets", "ack_latency_ms", None),
)

MAX_LINES = 20


def _key_cell(v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or v == "":
        return "-"
    return cell_text(v, 60)


def keyed_counts(df: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, int]:
    """Row counts of ``df`` by the values of ``columns`` (missing and empty values as ``-``)."""
    cols = [c for c in columns if c in df.columns]
    if not len(df) or not cols:
        return {}
    sizes = df.groupby(cols, dropna=False, sort=False).size()
    out: dict[str, int] = {}
    for key, n in sizes.items():
        parts = key if isinstance(key, tuple) else (key,)
        label = " ".join(f"{c}={_key_cell(v)}" for c, v in zip(cols, parts, strict=False))
        out[label] = out.get(label, 0) + int(n)
    return out


def _count_ok(base: int, cur: int, cfg: DiffConfig) -> bool:
    return abs(cur - base) <= max(cfg.count_tolerance, cfg.count_rel_tolerance * base)


def _pct(values: np.ndarray, name: str) -> float:
    if name == "max":
        return float(values.max())
    return float(np.percentile(values, float(name[1:])))


def _durations(df: pd.DataFrame, column: str, group: str | None) -> dict[str, np.ndarray]:
    if not len(df) or column not in df.columns:
        return {}
    vals = pd.to_numeric(df[column], errors="coerce").astype("float64")
    if group is None:
        v = vals.dropna().to_numpy()
        return {"": v} if len(v) else {}
    out: dict[str, np.ndarray] = {}
    keys = df[group].map(_key_cell)
    for k in sorted(keys.unique()):
        v = vals[keys == k].dropna().to_numpy()
        if len(v):
            out[str(k)] = v
    return out


def _tolerances(t: DiffConfig | Rules | Mapping[str, Any] | None) -> DiffConfig:
    if t is None:
        return DiffConfig()
    if isinstance(t, DiffConfig):
        return t
    if isinstance(t, Rules):
        return t.diff
    return diff_config(t)


def diff_reports(
    baseline: Analysis,
    current: Analysis,
    tolerances: DiffConfig | Rules | Mapping[str, Any] | None = None,
) -> list[RuleResult]:
    """Compare ``current`` with ``baseline``; one :class:`RuleResult` per comparison."""
    cfg = _tolerances(tolerances)
    results: list[RuleResult] = []
    tables = [t for t in TABLES if t not in cfg.ignore_tables]

    for table in tables:
        b, c = len(baseline.table(table)), len(current.table(table))
        ok = _count_ok(b, c, cfg)
        msg = f"{c} rows, baseline {b}" + ("" if ok else f" ({c - b:+d})")
        results.append(RuleResult(f"{table}: rows", ok, msg, value=float(c - b)))

    for table in tables:
        cols = KEY_COLUMNS.get(table)
        if not cols:
            continue
        bk = keyed_counts(baseline.table(table), cols)
        ck = keyed_counts(current.table(table), cols)
        bad: list[str] = []
        for key in sorted(set(bk) | set(ck)):
            nb, nc = bk.get(key, 0), ck.get(key, 0)
            if not _count_ok(nb, nc, cfg):
                bad.append(f"{key}: {nb} -> {nc} ({nc - nb:+d})")
        name = f"{table}: counts by {', '.join(cols)}"
        if bad:
            msg = f"{len(bad)} of {len(set(bk) | set(ck))} key(s) differ beyond the tolerance"
            results.append(RuleResult(name, False, msg, bad[:MAX_LINES], float(len(bad)), len(bad)))
        else:
            results.append(RuleResult(name, True, f"{len(ck)} key(s) match", value=0.0))

    for table, column, group in DURATIONS:
        if table not in tables:
            continue
        bd = _durations(baseline.table(table), column, group)
        cd = _durations(current.table(table), column, group)
        for key in sorted(set(bd) | set(cd)):
            name = f"{table}.{column}" + (f" {group}={key}" if group else "")
            if key not in bd or key not in cd:
                where = "baseline" if key not in bd else "current capture"
                results.append(RuleResult(name, False, f"no values in the {where}"))
                continue
            parts: list[str] = []
            bad = []
            for p in cfg.percentiles:
                vb, vc = _pct(bd[key], p), _pct(cd[key], p)
                tol = max(cfg.duration_rel_tolerance * abs(vb), cfg.duration_abs_tolerance_ms)
                delta = vc - vb
                within = delta <= tol if cfg.only_slower else abs(delta) <= tol
                text = f"{p} {vb:.3f} -> {vc:.3f} ms"
                parts.append(text)
                if not within:
                    bad.append(f"{text} ({delta:+.3f} ms, tolerance {tol:.3f} ms)")
            msg = ", ".join(parts)
            results.append(RuleResult(name, not bad, msg, bad, None, len(bad)))
    return results
