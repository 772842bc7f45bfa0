"""Rules files: reading, parsing and validating the TOML (``[[rule]]`` tables and the ``[diff]``
tolerances) into :class:`~dissect.report.check.model.Rules`; every problem is a
:class:`~dissect.report.check.model.RulesError`."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from dissect.records import TABLES
from dissect.report.check.expressions import (
    PERCENTILE,
    STATS,
    column_kind,
    compile_where,
    literal_kind,
    table_columns,
)
from dissect.report.check.model import DiffConfig, Rule, Rules, RulesError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


EXPECTS = ("none", "some")
RULE_KEYS = frozenset(
    {
        "name",
        "description",
        "metric",
        "table",
        "column",
        "where",
        "stat",
        "min",
        "max",
        "equals",
        "expect",
        "allowed",
        "if_empty",
    }
)


def _number(rule: str, key: str, v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RulesError(f"rule {rule!r}: {key} must be a number")
    return float(v)


def _is_stat(stat: str) -> bool:
    if stat in STATS:
        return True
    m = PERCENTILE.match(stat)
    return m is not None and 0 <= float(m.group(1)) <= 100


def _rule(d: Mapping[str, Any], index: int) -> Rule:
    if not isinstance(d, Mapping):
        raise RulesError(f"rule {index + 1}: must be a table ([[rule]])")
    name = d.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RulesError(f"rule {index + 1}: needs a name")
    unknown = sorted(set(d) - RULE_KEYS)
    if unknown:
        raise RulesError(f"rule {name!r}: unknown key(s) {', '.join(unknown)}")
    r = Rule(name=name, kind="stat", description=str(d.get("description", "")))
    metric = d.get("metric")
    table = d.get("table")
    column = d.get("column")
    if metric is not None:
        if not isinstance(metric, str) or "." not in metric:
            raise RulesError(f"rule {name!r}: metric must be 'table.column' or 'summary.<path>'")
        if table is not None or column is not None:
            raise RulesError(f"rule {name!r}: give metric, or table (and column), not both")
        head, _, rest = metric.partition(".")
        if head == "summary":
            r.kind = "summary"
            r.summary_path = tuple(p for p in rest.split("."))
            if not all(r.summary_path):
                raise RulesError(f"rule {name!r}: bad summary path {metric!r}")
        else:
            table, column = head, rest
    if r.kind != "summary":
        if not isinstance(table, str) or table not in TABLES:
            raise RulesError(
                f"rule {name!r}: unknown table {table!r}; tables are {', '.join(TABLES)}"
            )
        if column is not None and (not isinstance(column, str) or column not in table_columns(table)):
            raise RulesError(f"rule {name!r}: no column {column!r} in {table}")
        r.table, r.column = table, column

    for key in ("min", "max", "equals"):
        setattr(r, key, _number(name, key, d.get(key)))
    bounds = any(getattr(r, k) is not None for k in ("min", "max", "equals"))
    if_empty = d.get("if_empty", "fail")
    if if_empty not in ("fail", "pass"):
        raise RulesError(f"rule {name!r}: if_empty must be 'fail' or 'pass'")
    r.if_empty = if_empty

    if r.kind == "summary":
        for key in ("where", "stat", "expect", "allowed"):
            if key in d:
                raise RulesError(f"rule {name!r}: {key} does not apply to a summary metric")
        if not bounds:
            raise RulesError(f"rule {name!r}: a summary metric needs min, max or equals")
        return r

    assert r.table is not None
    where = d.get("where")
    if where is not None:
        r.where = where
        try:
            r.where_tree = compile_where(r.table, where)
        except RulesError as e:
            raise RulesError(f"rule {name!r}: {e}") from None

    tests = [k for k in ("expect", "allowed") if k in d] + (["bounds"] if bounds else [])
    if len(tests) != 1:
        raise RulesError(
            f"rule {name!r}: needs exactly one test: expect, allowed, or min/max/equals"
        )
    if "stat" in d and tests != ["bounds"]:
        raise RulesError(f"rule {name!r}: stat goes with min, max or equals")
    if "expect" in d:
        if d["expect"] not in EXPECTS:
            raise RulesError(f"rule {name!r}: expect must be 'none' or 'some'")
        if r.column is not None:
            raise RulesError(f"rule {name!r}: expect tests rows: give a where, not a column")
        r.kind, r.expect = "expect", d["expect"]
    elif "allowed" in d:
        allowed = d["allowed"]
        if r.column is None:
            raise RulesError(f"rule {name!r}: allowed needs a column")
        if not isinstance(allowed, list) or not all(
            isinstance(x, (str, int, float, bool)) for x in allowed
        ):
            raise RulesError(f"rule {name!r}: allowed must be a list of values")
        kind = column_kind(r.table, r.column)
        for x in allowed:
            if literal_kind(x) != kind and not {kind, literal_kind(x)} <= {"number", "bool"}:
                raise RulesError(f"rule {name!r}: {r.column} holds {kind} values; {x!r} is not one")
        r.kind, r.allowed = "allowed", tuple(allowed)
    else:
        stat = d.get("stat", "count")
        if not isinstance(stat, str) or not _is_stat(stat):
            raise RulesError(
                f"rule {name!r}: stat must be one of {', '.join(STATS)} or pNN (p50, p99.9)"
            )
        if stat not in ("count", "nunique"):
            if r.column is None:
                raise RulesError(f"rule {name!r}: stat {stat} needs a column")
            if column_kind(r.table, r.column) == "text":
                raise RulesError(f"rule {name!r}: {r.column} is text; {stat} needs numbers")
        if stat == "nunique" and r.column is None:
            raise RulesError(f"rule {name!r}: stat nunique needs a column")
        r.kind, r.stat = "stat", stat
    return r


_DIFF_KEYS = {
    "count_tolerance": int,
    "count_rel_tolerance": float,
    "anomaly_tolerance": int,
    "anomaly_rel_tolerance": float,
    "lost_bytes_tolerance": int,
    "lost_bytes_rel_tolerance": float,
    "retransmission_tolerance": int,
    "retransmission_rel_tolerance": float,
    "duration_rel_tolerance": float,
    "duration_abs_tolerance_ms": float,
    "percentiles": list,
    "only_slower": bool,
    "ignore_tables": list,
}


def diff_config(d: Mapping[str, Any] | None) -> DiffConfig:
    """Validate a ``[diff]`` table."""
    cfg = DiffConfig()
    if not d:
        return cfg
    if not isinstance(d, Mapping):
        raise RulesError("[diff] must be a table")
    for key, value in d.items():
        want = _DIFF_KEYS.get(key)
        if want is None:
            raise RulesError(f"[diff]: unknown key {key!r}; keys are {', '.join(_DIFF_KEYS)}")
        if want is bool:
            if not isinstance(value, bool):
                raise RulesError(f"[diff]: {key} must be true or false")
        elif want in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise RulesError(f"[diff]: {key} must be a number >= 0")
            if want is int and not float(value).is_integer():
                raise RulesError(f"[diff]: {key} must be a whole number")
            value = want(value)
        else:
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise RulesError(f"[diff]: {key} must be a list of names")
            if key == "ignore_tables":
                bad = [t for t in value if t not in TABLES]
                if bad:
                    raise RulesError(f"[diff]: unknown table(s) {', '.join(bad)}")
            if key == "percentiles":
                bad = [p for p in value if not (PERCENTILE.match(p) or p == "max")]
                if bad:
                    raise RulesError(f"[diff]: percentiles must be like p50, p99.9 or max: {bad}")
            value = tuple(value)
        setattr(cfg, key, value)
    return cfg


def rules_from_dict(d: Mapping[str, Any], source: str = "<rules>") -> Rules:
    """Validate a parsed rules document (``{"rule": [...], "diff": {...}}``)."""
    if not isinstance(d, Mapping):
        raise RulesError(f"{source}: not a TOML document")
    unknown = sorted(set(d) - {"rule", "diff"})
    if unknown:
        raise RulesError(
            f"{source}: unknown top-level key(s) {', '.join(unknown)} "
            "(rules are [[rule]] tables; tolerances go in [diff])"
        )
    raw = d.get("rule", [])
    if isinstance(raw, Mapping):
        raise RulesError(f"{source}: write [[rule]] (an array of tables), not [rule]")
    if not isinstance(raw, list):
        raise RulesError(f"{source}: rule must be an array of tables")
    try:
        rules = [_rule(x, i) for i, x in enumerate(raw)]
        seen: set[str] = set()
        for r in rules:
            if r.name in seen:
                raise RulesError(f"two rules are named {r.name!r}")
            seen.add(r.name)
        cfg = diff_config(d.get("diff"))
    except RulesError as e:
        raise RulesError(f"{source}: {e}") from None
    return Rules(rules, cfg, source)


def parse_rules(text: str, source: str = "<rules>") -> Rules:
    """Parse and validate the TOML text of a rules file."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RulesError(f"{source}: bad TOML: {e}") from None
    return rules_from_dict(d, source)


def load_rules(path: str | os.PathLike[str]) -> Rules:
    """Read, parse and validate a rules file."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise RulesError(f"{p}: cannot read rules: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RulesError(f"{p}: rules file is not UTF-8") from None
    return parse_rules(text, p)


def coerce_rules(
    rules: Rules | Sequence[Rule] | Mapping[str, Any] | str | os.PathLike[str],
) -> Rules:
    """Rules from a :class:`Rules`, a list of :class:`Rule`, a parsed dict or a file path."""
    if isinstance(rules, Rules):
        return rules
    if isinstance(rules, Mapping):
        return rules_from_dict(rules)
    if isinstance(rules, (str, os.PathLike)):
        return load_rules(rules)
    if isinstance(rules, Sequence) and all(isinstance(r, Rule) for r in rules):
        return Rules([r for r in rules if isinstance(r, Rule)])
    raise TypeError("rules must be Rules, a list of Rule, a dict or a path to a TOML file")
