"""Checking rules against an analysis: each rule's verdict (:func:`check_rules`) and the pytest
helper :func:`assert_rules`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from dissect.report.check.expressions import column_kind, compute_stat, eval_where
from dissect.report.check.model import Rule, Rules, RulesError
from dissect.report.check.results import RuleResult, cell_text, offender_lines, source_files
from dissect.report.check.rules import coerce_rules
from dissect.report.terminal import safe_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis


def _fmt_num(v: float | None) -> str:
    if v is None:
        return "none"
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.6g}"


def _bounds_text(r: Rule) -> str:
    parts = []
    if r.equals is not None:
        parts.append(f"= {_fmt_num(r.equals)}")
    if r.min is not None:
        parts.append(f">= {_fmt_num(r.min)}")
    if r.max is not None:
        parts.append(f"<= {_fmt_num(r.max)}")
    return " and ".join(parts)


def _within(r: Rule, v: float) -> bool:
    if r.equals is not None and not math.isclose(v, r.equals, rel_tol=1e-9, abs_tol=1e-9):
        return False
    if r.min is not None and v < r.min:
        return False
    return not (r.max is not None and v > r.max)


def _resolve_summary(summary: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = summary
    for i, key in enumerate(path):
        if isinstance(node, Mapping):
            if key in node:
                node = node[key]
                continue
            parent = path[i - 1] if i else ""
            if parent.startswith("by_"):
                return 0  # a count that never happened
            raise RulesError(f"summary has no {'.'.join(path[: i + 1])}")
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
            continue
        raise RulesError(f"summary has no {'.'.join(path[: i + 1])}")
    return node


def _check_summary(r: Rule, summary: Mapping[str, Any]) -> RuleResult:
    v = _resolve_summary(summary, r.summary_path)
    if isinstance(v, (Mapping, list)):
        raise RulesError(f"rule {r.name!r}: {r.subject} is not a number (a table or list)")
    if isinstance(v, bool):
        v = float(v)
    if v is not None and not isinstance(v, (int, float)):
        raise RulesError(f"rule {r.name!r}: {r.subject} is not a number ({v!r})")
    if v is None:
        ok = r.if_empty == "pass"
        return RuleResult(r.name, ok, f"{r.subject} has no value (if_empty = {r.if_empty})")
    fv = float(v)
    ok = _within(r, fv)
    msg = f"{r.subject} is {_fmt_num(fv)}" + ("" if ok else f", wanted {_bounds_text(r)}")
    return RuleResult(r.name, ok, msg, value=fv)


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """The table with its ``category`` columns as plain values: rules compare text by its order
    (``direction < 'd'``), test substrings and count values as they would on any text column."""
    cats = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    if not cats:
        return df
    return df.assign(**{c: df[c].astype(object).where(df[c].notna(), None) for c in cats})


def _check_table(r: Rule, df: pd.DataFrame, sources: Mapping[int, str] | None = None) -> RuleResult:
    assert r.table is not None
    df = _plain(df)
    if r.column is not None and r.column not in df.columns:
        raise RulesError(f"rule {r.name!r}: the {r.table} table has no column {r.column!r}")
    rows = df[eval_where(r.where_tree, df)] if r.where_tree is not None else df
    subject = r.subject

    if r.kind == "expect":
        n = len(rows)
        if r.expect == "none":
            ok = n == 0
            msg = f"no {r.table} rows" if ok else f"{n} {r.table} row(s), expected none"
            offenders, total = ([], 0) if ok else offender_lines(r.table, rows, None, sources)
        else:
            ok = n > 0
            msg = f"{n} {r.table} row(s)" if ok else f"no {r.table} rows, expected some"
            offenders, total = [], 0
        if r.where:
            msg += f" where {r.where}"
        return RuleResult(r.name, ok, msg, offenders, float(n), total)

    if r.kind == "allowed":
        assert r.column is not None
        vals = rows[r.column]
        present = vals.notna()
        allowed = list(r.allowed)
        if column_kind(r.table, r.column) == "number":
            nums = pd.to_numeric(vals, errors="coerce")
            bad_mask = present & ~nums.isin([float(x) for x in allowed])
        else:
            bad_mask = present & ~vals.isin(allowed)
        bad = rows[bad_mask]
        ok = len(bad) == 0
        shown = ", ".join(cell_text(x) for x in allowed)
        if ok:
            msg = f"every {subject} is one of [{shown}]"
            return RuleResult(r.name, True, msg, value=0.0)
        counts = bad[r.column].map(cell_text).value_counts()
        seen = ", ".join(f"{safe_text(k, 40)} ({n})" for k, n in counts.head(10).items())
        msg = f"{len(bad)} {r.table} row(s) with {r.column} outside [{shown}]: {seen}"
        offenders, total = offender_lines(r.table, bad, r.column, sources)
        return RuleResult(r.name, False, msg, offenders, float(len(bad)), total)

    # stat
    values = rows[r.column] if r.column is not None else pd.Series(1, index=rows.index)
    if r.stat == "count" and r.column is None:
        value: float | None = float(len(rows))
    else:
        value = compute_stat(r.stat, values)
    label = f"{r.stat} of {subject}"
    if value is None:
        ok = r.if_empty == "pass"
        return RuleResult(r.name, ok, f"{label}: no values (if_empty = {r.if_empty})")
    ok = _within(r, value)
    if ok:
        return RuleResult(
            r.name, True, f"{label} is {_fmt_num(value)} ({_bounds_text(r)})", value=value
        )
    msg = f"{label} is {_fmt_num(value)}, wanted {_bounds_text(r)}"
    offenders = []
    total = 0
    too_high = (r.max is not None and value > r.max) or (r.equals is not None and value > r.equals)
    if r.stat == "count" or r.stat == "nunique":
        if too_high:
            offenders, total = offender_lines(r.table, rows, r.column, sources)
    elif r.column is not None:
        nums = pd.to_numeric(rows[r.column], errors="coerce").astype("float64")
        limit = r.max if r.max is not None else r.equals
        if too_high and limit is not None:
            bad = (
                rows[nums > limit]
                .assign(_v=nums[nums > limit])
                .sort_values("_v", ascending=False, kind="stable")
            )
        else:
            limit = r.min if r.min is not None else r.equals
            bad = (
                rows[nums < limit]
                .assign(_v=nums[nums < limit])
                .sort_values("_v", ascending=True, kind="stable")
                if limit is not None
                else rows.iloc[:0]
            )
        offenders, total = offender_lines(r.table, bad.drop(columns="_v", errors="ignore"), r.column, sources)
    return RuleResult(r.name, False, msg, offenders, value, total)


def require_rules(rules: Rules) -> None:
    """Raise :class:`RulesError` when ``rules`` holds no rule: an empty rules file would pass any
    capture, so it is an error (``dissect check`` exits 2), never a pass."""
    if not rules.rules:
        raise RulesError(
            f"{rules.source}: no rules ([[rule]] tables): an empty rules file would pass anything"
        )


def check_rules(
    analysis: Analysis, rules: Rules | Sequence[Rule] | Mapping[str, Any] | str | os.PathLike[str]
) -> list[RuleResult]:
    """Check every rule against ``analysis``; one :class:`RuleResult` per rule, in order.

    Raises :class:`RulesError` for rules that cannot be checked (none at all, a summary path that
    does not exist, a column the tables lack). With captures from more than one file, offender
    lines name each row's ``source_file``.
    """
    rs = coerce_rules(rules)
    require_rules(rs)
    summary: Mapping[str, Any] | None = None
    sources = source_files(analysis.sessions)
    out: list[RuleResult] = []
    for r in rs.rules:
        if r.kind == "summary":
            if summary is None:
                from dissect.output.summary import summary_of

                summary = summary_of(analysis)
            out.append(_check_summary(r, summary))
        else:
            assert r.table is not None
            out.append(_check_table(r, analysis.table(r.table), sources))
    return out


def assert_rules(
    analysis: Analysis,
    rules_or_path: Rules | Sequence[Rule] | Mapping[str, Any] | str | os.PathLike[str],
) -> list[RuleResult]:
    """pytest helper: check the rules and raise AssertionError listing every failed rule.

    >>> assert_rules(dissect.analyze("capture.pcapng"), "rules.toml")
    """
    results = check_rules(analysis, rules_or_path)
    failed = [r for r in results if not r.passed]
    if failed:
        lines = [f"{len(failed)} of {len(results)} dissect rule(s) failed:"]
        for r in failed:
            lines += ["  " + line for line in r.lines()]
        raise AssertionError("\n".join(lines))
    return results

