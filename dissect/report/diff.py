"""``dissect diff``: compare an analysis (of captures, or a stored report) with a baseline, within
tolerances. One :class:`~dissect.report.check.RuleResult` per comparison, always the same ones for
the same tables (so a CI system sees the same test cases on every run).

What is compared (timestamps, addresses, ports, session ids and other session-specific values never
are; the keys are in :mod:`dissect.report.diff_facts`):

- the row count of every table, and counts by key: sessions by app protocol and transport,
  handshakes by layer (and Engine.IO transport), http by method and status, ws_frames and
  ws_messages by opcode and direction, sio_packets by type, event, namespace and direction;
- anomalies by kind and table, lost bytes, retransmissions, failed handshakes by layer: these fail
  only when they grow (fewer is never a regression);
- sessions by close kind (fin, rst, open), WebSocket close codes by direction, TLS sessions
  decrypted or not;
- duration percentiles: handshakes.duration_ms per layer, http.duration_ms and
  sio_packets.ack_latency_ms.

A figure may move by ``max(abs_tolerance, rel_tolerance * baseline)``; the pairs come from the
``[diff]`` table of a rules file (:class:`~dissect.report.check.DiffConfig`, docs/ci-gating.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dissect.records import TABLES
from dissect.report.check import DiffConfig, RuleResult, Rules, cell_text, diff_config
from dissect.report.diff_facts import (
    KEY_COLUMNS,
    KEY_TITLES,
    anomaly_counts,
    close_codes,
    close_kinds,
    column_sum,
    failed_handshakes,
    key_label,
    keyed_counts,
    missing,
    session_lines,
    tls_decryption,
)

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

__all__ = ["DURATIONS", "KEY_COLUMNS", "KEY_TITLES", "MAX_LINES", "diff_reports", "key_label", "keyed_counts"]

# (table, duration column, grouping column or None)
DURATIONS: tuple[tuple[str, str, str | None], ...] = (
    ("handshakes", "duration_ms", "layer"),
    ("http", "duration_ms", None),
    ("sio_packets", "ack_latency_ms", None),
)

MAX_LINES = 20


def _allowance(base: float, abs_tol: float, rel_tol: float) -> float:
    return max(abs_tol, rel_tol * abs(base))


def _within(base: float, cur: float, abs_tol: float, rel_tol: float, only_up: bool) -> bool:
    delta = cur - base
    tol = _allowance(base, abs_tol, rel_tol)
    return delta <= tol if only_up else abs(delta) <= tol


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
    keys = df[group].map(lambda x: "-" if missing(x) else cell_text(x, 60))
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


def compare_keyed(
    name: str,
    what: str,
    base: Mapping[str, int],
    cur: Mapping[str, int],
    abs_tol: float,
    rel_tol: float,
    only_up: bool = False,
    notes: Mapping[str, list[str]] | None = None,
) -> RuleResult:
    """One result comparing counts by key: a line ``key: 3 -> 5 (+2)`` per key beyond the tolerance
    (only increases with ``only_up``), ``notes[key]`` appended to its line."""
    keys = sorted(set(base) | set(cur))
    tb, tc = sum(base.values()), sum(cur.values())
    bad: list[str] = []
    for key in keys:
        nb, nc = base.get(key, 0), cur.get(key, 0)
        if not _within(nb, nc, abs_tol, rel_tol, only_up):
            line = f"{key}: {nb} -> {nc} ({nc - nb:+d})"
            extra = (notes or {}).get(key)
            if extra:
                line += ": " + "; ".join(extra[:3])
            bad.append(line)
    totals = f"{tc} {what}, baseline {tb} ({tc - tb:+d})" if tb != tc else f"{tc} {what} as in the baseline"
    if not keys:
        return RuleResult(name, True, f"no {what} on either side", value=0.0)
    if bad:
        msg = f"{totals}; {len(bad)} of {len(keys)} key(s) beyond the tolerance"
        return RuleResult(name, False, msg, bad[:MAX_LINES], float(tc - tb), len(bad))
    return RuleResult(name, True, f"{totals}; {len(keys)} key(s) within the tolerance", value=float(tc - tb))


def compare_total(
    name: str, unit: str, base: int, cur: int, abs_tol: float, rel_tol: float, lines: list[str]
) -> RuleResult:
    """One result comparing a total that may only grow within the tolerance (lost bytes,
    retransmissions); ``lines`` (the current capture's sessions with some) shown when it fails."""
    tol = _allowance(base, abs_tol, rel_tol)
    ok = cur - base <= tol
    msg = f"{cur} {unit}, baseline {base}"
    if not ok:
        msg += f" ({cur - base:+d}, tolerance {tol:g})"
    return RuleResult(name, ok, msg, [] if ok else lines, float(cur - base), 0 if ok else len(lines))


def _counts_by_key(baseline: Analysis, current: Analysis, tables: list[str], cfg: DiffConfig) -> list[RuleResult]:
    results: list[RuleResult] = []
    for table in tables:
        b, c = len(baseline.table(table)), len(current.table(table))
        ok = _within(b, c, cfg.count_tolerance, cfg.count_rel_tolerance, False)
        msg = f"{c} rows, baseline {b}" + ("" if ok else f" ({c - b:+d})")
        results.append(RuleResult(f"{table}: rows", ok, msg, value=float(c - b)))
    for table in tables:
        cols = KEY_COLUMNS.get(table)
        if not cols:
            continue
        results.append(compare_keyed(
            f"{table}: counts by {KEY_TITLES[table]}", f"{table} rows",
            keyed_counts(table, baseline.table(table)), keyed_counts(table, current.table(table)),
            cfg.count_tolerance, cfg.count_rel_tolerance))
    return results


def _facts(baseline: Analysis, current: Analysis, tables: list[str], cfg: DiffConfig) -> list[RuleResult]:
    results = [compare_keyed("anomalies by kind", "anomalies", anomaly_counts(baseline),
                             anomaly_counts(current), cfg.anomaly_tolerance,
                             cfg.anomaly_rel_tolerance, only_up=True)]
    if "sessions" in tables:
        b, c = baseline.sessions, current.sessions
        results.append(compare_total("tcp: lost bytes", "bytes lost", column_sum(b, "lost_bytes"),
                                     column_sum(c, "lost_bytes"), cfg.lost_bytes_tolerance,
                                     cfg.lost_bytes_rel_tolerance, session_lines(current, "lost_bytes")))
        results.append(compare_total(
            "tcp: retransmissions", "retransmitted segment(s)", column_sum(b, "retransmissions"),
            column_sum(c, "retransmissions"), cfg.retransmission_tolerance,
            cfg.retransmission_rel_tolerance, session_lines(current, "retransmissions")))
        results.append(compare_keyed("sessions by close", "sessions", close_kinds(baseline),
                                     close_kinds(current), cfg.count_tolerance, cfg.count_rel_tolerance))
        results.append(compare_keyed("tls: sessions decrypted", "TLS sessions", tls_decryption(baseline),
                                     tls_decryption(current), cfg.count_tolerance, cfg.count_rel_tolerance))
    if "ws_frames" in tables:
        results.append(compare_keyed("websocket close codes", "close frames", close_codes(baseline),
                                     close_codes(current), cfg.count_tolerance, cfg.count_rel_tolerance))
    if "handshakes" in tables:
        fb, _ = failed_handshakes(baseline)
        fc, details = failed_handshakes(current)
        results.append(compare_keyed("handshakes failed by layer", "failed handshakes", fb, fc,
                                     cfg.count_tolerance, cfg.count_rel_tolerance, only_up=True,
                                     notes=details))
    return results


def _percentiles(baseline: Analysis, current: Analysis, tables: list[str], cfg: DiffConfig) -> list[RuleResult]:
    results: list[RuleResult] = []
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
                tol = _allowance(vb, cfg.duration_abs_tolerance_ms, cfg.duration_rel_tolerance)
                delta = vc - vb
                text = f"{p} {vb:.3f} -> {vc:.3f} ms"
                parts.append(text)
                if not _within(vb, vc, cfg.duration_abs_tolerance_ms, cfg.duration_rel_tolerance,
                               cfg.only_slower):
                    bad.append(f"{text} ({delta:+.3f} ms, tolerance {tol:.3f} ms)")
            sizes = f"(n={len(cd[key])}, baseline n={len(bd[key])})"
            if bad:
                msg = f"{len(bad)} of {len(parts)} percentile(s) beyond the tolerance {sizes}"
            else:
                msg = ", ".join(parts) + f" {sizes}"
            results.append(RuleResult(name, not bad, msg, bad, None, len(bad)))
    return results


def diff_reports(
    baseline: Analysis,
    current: Analysis,
    tolerances: DiffConfig | Rules | Mapping[str, Any] | None = None,
) -> list[RuleResult]:
    """Compare ``current`` with ``baseline``; one :class:`RuleResult` per comparison (module doc)."""
    cfg = _tolerances(tolerances)
    tables = [t for t in TABLES if t not in cfg.ignore_tables]
    return (_counts_by_key(baseline, current, tables, cfg) + _facts(baseline, current, tables, cfg)
            + _percentiles(baseline, current, tables, cfg))
