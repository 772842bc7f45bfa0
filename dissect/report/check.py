"""CI gating: rules over the tables of an analysis, checked with ``dissect check`` or from pytest.

A rules file is TOML (the format reference is ``docs/ci-gating.md``)::

    [[rule]]
    name = "socketio handshake p90 under 50 ms"
    metric = "handshakes.duration_ms"       # table.column, or summary.<path in summary.json>
    where = "layer == 'socketio'"           # optional filter on the table's rows
    stat = "p90"                            # count|min|max|mean|median|sum|nunique|pNN
    max = 50                                # and/or min, or equals

    [[rule]]
    name = "no websocket anomalies"
    table = "ws_frames"
    where = "anomaly != ''"
    expect = "none"                         # none|some

    [[rule]]
    name = "close codes"
    table = "ws_frames"
    column = "close_code"
    allowed = [1000, 1001]

``where`` reads like a pandas query but is not handed to pandas: it is parsed with :mod:`ast`,
only column names, literals, comparisons (``== != < <= > >= in not in``) and ``and or not & | ~``
are accepted, and dissect evaluates it itself. Anything else (attribute access, calls, subscripts,
arithmetic, ``@`` variables) makes the rules file invalid: :class:`RulesError`, exit 2.
"""

from __future__ import annotations

import ast
import math
import operator
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dissect.errors import DissectError
from dissect.records import TABLES, column_types
from dissect.report.terminal import safe_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class RulesError(DissectError):
    """A rules file that cannot be used: bad TOML, an unknown table or column, an invalid rule or
    ``where``. The CLI prints it on one line and exits 2."""


@dataclass
class RuleResult:
    """The outcome of one rule (or one comparison of ``dissect diff``)."""

    name: str
    passed: bool
    message: str
    offenders: list[str] = field(default_factory=list)
    value: float | None = None
    total_offenders: int = 0

    def lines(self) -> list[str]:
        """Human-readable lines: the verdict and message, then the offenders indented."""
        out = [f"{'PASS' if self.passed else 'FAIL'} {safe_text(self.name)}: {self.message}"]
        out += [f"    {o}" for o in self.offenders]
        more = self.total_offenders - len(self.offenders)
        if more > 0:
            out.append(f"    ... and {more} more")
        return out


STATS = ("count", "min", "max", "mean", "median", "sum", "nunique")
_PCT = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
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
MAX_OFFENDERS = 10
MAX_WHERE = 2000

# Columns that identify a row in offender lists, per table.
ROW_IDS: dict[str, tuple[str, ...]] = {
    "sessions": ("session_id", "app_protocol"),
    "handshakes": ("session_id", "layer"),
    "http": ("session_id", "method", "target"),
    "ws_frames": ("session_id", "frame_index", "direction", "opcode_name"),
    "ws_messages": ("session_id", "message_index", "direction", "opcode_name"),
    "sio_packets": ("session_id", "direction", "sio_type", "namespace", "event"),
}


@dataclass
class DiffConfig:
    """The ``[diff]`` table of a rules file: tolerances of ``dissect diff``."""

    count_tolerance: int = 0
    count_rel_tolerance: float = 0.0
    duration_rel_tolerance: float = 0.5
    duration_abs_tolerance_ms: float = 1.0
    percentiles: tuple[str, ...] = ("p50", "p90")
    only_slower: bool = False
    ignore_tables: tuple[str, ...] = ()


@dataclass
class Rule:
    """One validated ``[[rule]]``."""

    name: str
    kind: str  # stat | expect | allowed | summary
    table: str | None = None
    column: str | None = None
    summary_path: tuple[str, ...] = ()
    where: str | None = None
    where_tree: ast.Expression | None = None
    stat: str = "count"
    min: float | None = None
    max: float | None = None
    equals: float | None = None
    expect: str | None = None
    allowed: tuple[Any, ...] = ()
    if_empty: str = "fail"
    description: str = ""

    @property
    def subject(self) -> str:
        if self.kind == "summary":
            return "summary." + ".".join(self.summary_path)
        s = f"{self.table}.{self.column}" if self.column else str(self.table)
        if self.where:
            s += f" where {self.where}"
        return s


@dataclass
class Rules:
    rules: list[Rule] = field(default_factory=list)
    diff: DiffConfig = field(default_factory=DiffConfig)
    source: str = "<rules>"


# -- column kinds ---------------------------------------------------------------------------------


def column_kind(table: str, column: str) -> str:
    """``text``, ``number`` or ``bool`` for a contract column."""
    hint = column_types(TABLES[table]).get(column, "")
    if hint.startswith("bool"):
        return "bool"
    if hint.startswith(("int", "float")):
        return "number"
    return "text"


def _columns(table: str) -> tuple[str, ...]:
    return tuple(TABLES[table]._fields)  # type: ignore[attr-defined]


# -- where: validation ----------------------------------------------------------------------------

_CMP_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FLIP: dict[type, type] = {
    ast.Lt: ast.Gt,
    ast.Gt: ast.Lt,
    ast.LtE: ast.GtE,
    ast.GtE: ast.LtE,
    ast.Eq: ast.Eq,
    ast.NotEq: ast.NotEq,
}
_OP_TEXT = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}


def _literal(node: ast.AST) -> tuple[bool, Any]:
    """(True, value) when ``node`` is a literal scalar (with an optional sign)."""
    if isinstance(node, ast.Constant) and (
        node.value is None or isinstance(node.value, (str, int, float, bool))
    ):
        return True, node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        v = node.operand.value
        return True, -v if isinstance(node.op, ast.USub) else v
    return False, None


def _lit_kind(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "text"


class _Checker:
    def __init__(self, table: str, text: str) -> None:
        self.table = table
        self.text = text
        self.columns = set(_columns(table))

    def fail(self, why: str) -> RulesError:
        return RulesError(f"where {self.text!r}: {why}")

    def bool_expr(self, node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self.bool_expr(v)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
            self.bool_expr(node.operand)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            self.bool_expr(node.left)
            self.bool_expr(node.right)
        elif isinstance(node, ast.Compare):
            self.compare(node)
        elif isinstance(node, ast.Name):
            self.name(node)
            if column_kind(self.table, node.id) != "bool":
                raise self.fail(f"{node.id} is not a true/false column: compare it with a value")
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            pass
        else:
            raise self.fail(self.why_not(node))

    def why_not(self, node: ast.AST) -> str:
        if isinstance(node, ast.Attribute):
            return "attribute access is not allowed"
        if isinstance(node, ast.Call):
            return "function calls are not allowed"
        if isinstance(node, ast.Subscript):
            return "subscripts are not allowed"
        if isinstance(node, ast.BinOp):
            return "arithmetic is not allowed"
        return (
            f"{type(node).__name__} is not allowed (only column names, literals, "
            "comparisons and and/or/not)"
        )

    def name(self, node: ast.Name) -> str:
        if node.id not in self.columns:
            raise self.fail(f"no column {node.id!r} in {self.table}")
        return node.id

    def operand(self, node: ast.AST) -> str:
        """The kind of a comparison operand: a column's kind or a literal's."""
        if isinstance(node, ast.Name):
            return column_kind(self.table, self.name(node))
        ok, v = _literal(node)
        if ok:
            return "lit-" + _lit_kind(v)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            kinds = set()
            for e in node.elts:
                ok, v = _literal(e)
                if not ok:
                    raise self.fail("a list may hold only literals")
                if v is not None:
                    kinds.add(_lit_kind(v))
            return "list-" + ("mixed" if len(kinds) > 1 else (kinds.pop() if kinds else "empty"))
        raise self.fail(self.why_not(node))

    def compare(self, node: ast.Compare) -> None:
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if type(op) not in _OP_TEXT:
                raise self.fail(f"operator {type(op).__name__} is not allowed")
            lk, rk = self.operand(left), self.operand(right)
            if isinstance(op, (ast.In, ast.NotIn)):
                if rk.startswith("list-"):
                    if lk.startswith(("lit-", "list-")):
                        raise self.fail("'in' needs a column on its left")
                    self.compatible(lk, rk[5:], left)
                elif lk == "lit-text" and rk == "text":
                    pass  # substring test: 'bad_close' in anomaly
                else:
                    raise self.fail("'in' takes a column and a list, or a text and a text column")
            else:
                if rk.startswith("list-") or lk.startswith("list-"):
                    raise self.fail("a list goes only on the right of 'in'")
                if not lk.startswith("lit-"):
                    self.compatible(lk, rk[4:] if rk.startswith("lit-") else rk, left, op)
                elif not rk.startswith("lit-"):
                    self.compatible(rk, lk[4:], right, op)
                if "lit-none" in (lk, rk) and not isinstance(op, (ast.Eq, ast.NotEq)):
                    raise self.fail("None compares only with == and !=")
            left = right

    def compatible(
        self, col_kind: str, other: str, node: ast.AST, op: ast.cmpop | None = None
    ) -> None:
        if other == "mixed":
            raise self.fail("a list must hold values of one type")
        if (
            other in ("none", "empty")
            or col_kind == other
            or {col_kind, other} <= {"number", "bool"}
        ):
            return
        name = node.id if isinstance(node, ast.Name) else "column"
        raise self.fail(f"{name} holds {col_kind} values, compared with a {other} value")


def compile_where(table: str, text: str) -> ast.Expression:
    """Parse and validate a ``where`` expression over the columns of ``table``."""
    if not isinstance(text, str) or not text.strip():
        raise RulesError("where must be a non-empty string")
    if len(text) > MAX_WHERE:
        raise RulesError(f"where is longer than {MAX_WHERE} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise RulesError(f"where {text!r}: not a valid expression ({e.msg})") from None
    except (ValueError, RecursionError, MemoryError):
        raise RulesError(f"where {text!r}: not a valid expression") from None
    _Checker(table, text).bool_expr(tree.body)
    return tree


# -- where: evaluation ----------------------------------------------------------------------------


def _false(df: pd.DataFrame) -> pd.Series:
    return pd.Series(False, index=df.index, dtype=bool)


def _mask(s: Any) -> pd.Series:
    """A boolean Series with missing values as False."""
    return pd.Series(s).fillna(False).astype(bool)


def eval_where(tree: ast.Expression, df: pd.DataFrame) -> pd.Series:
    """The rows of ``df`` that match a compiled ``where`` (a boolean Series on ``df.index``).

    Missing values match only ``== None``; every other comparison with a missing value is false,
    ``!=`` included.
    """

    def col(name: str) -> pd.Series:
        if name not in df.columns:
            return pd.Series([None] * len(df), index=df.index, dtype=object)
        return df[name]

    def value(node: ast.AST) -> tuple[str, Any]:
        if isinstance(node, ast.Name):
            return "col", col(node.id)
        ok, v = _literal(node)
        if ok:
            return "lit", v
        assert isinstance(node, (ast.List, ast.Tuple, ast.Set))
        return "list", [_literal(e)[1] for e in node.elts]

    def cmp(left: ast.AST, op: ast.cmpop, right: ast.AST) -> pd.Series:
        lt, lv = value(left)
        rt, rv = value(right)
        if isinstance(op, (ast.In, ast.NotIn)):
            if rt == "list":
                present = lv.notna()
                hit = lv.isin([x for x in rv if x is not None]) & present
                if None in rv:  # a missing value is "in" a list that holds None
                    hit = hit | ~present
                    return _mask(hit if isinstance(op, ast.In) else ~hit)
                return _mask(hit if isinstance(op, ast.In) else ~hit & present)
            # substring: 'text' in column
            text_col: pd.Series = rv
            present = text_col.notna()
            hit = text_col.where(present, "").astype(str).str.contains(str(lv), regex=False)
            hit = hit & present
            return _mask(hit if isinstance(op, ast.In) else ~hit & present)
        if lt == "lit" and rt == "lit":
            return pd.Series(bool(_CMP_OPS[type(op)](lv, rv)), index=df.index, dtype=bool)
        if lt == "lit":  # literal op column -> column flipped-op literal
            lt, lv, rt, rv = rt, rv, lt, lv
            op = _FLIP[type(op)]()
        s: pd.Series = lv
        if rt == "lit" and rv is None:
            return _mask(s.isna() if isinstance(op, ast.Eq) else s.notna())
        fn = _CMP_OPS[type(op)]
        present = s.notna()
        if rt == "col":
            present = present & rv.notna()
        out = _false(df)
        if present.any():
            a = s[present]
            b = rv[present] if rt == "col" else rv
            if a.dtype == object or str(a.dtype) in ("string", "str"):
                a = a.astype(object)
            try:
                res = fn(a, b)
            except TypeError as e:
                raise RulesError(f"where: cannot compare: {e}") from None
            out.loc[present] = _mask(res).to_numpy()
        return out

    def boolean(node: ast.AST) -> pd.Series:
        if isinstance(node, ast.BoolOp):
            parts = [boolean(v) for v in node.values]
            acc = parts[0]
            for p in parts[1:]:
                acc = (acc & p) if isinstance(node.op, ast.And) else (acc | p)
            return acc
        if isinstance(node, ast.UnaryOp):
            return ~boolean(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = boolean(node.left), boolean(node.right)
            return (a & b) if isinstance(node.op, ast.BitAnd) else (a | b)
        if isinstance(node, ast.Compare):
            both: pd.Series | None = None
            left = node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                m = cmp(left, op, right)
                both = m if both is None else (both & m)
                left = right
            assert both is not None
            return both
        if isinstance(node, ast.Name):
            return _mask(col(node.id))
        if isinstance(node, ast.Constant):
            return pd.Series(bool(node.value), index=df.index, dtype=bool)
        raise RulesError(f"where: {type(node).__name__} is not allowed")  # pragma: no cover

    return boolean(tree.body)


# -- loading --------------------------------------------------------------------------------------


def _number(rule: str, key: str, v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RulesError(f"rule {rule!r}: {key} must be a number")
    return float(v)


def _is_stat(stat: str) -> bool:
    if stat in STATS:
        return True
    m = _PCT.match(stat)
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
        if column is not None and (not isinstance(column, str) or column not in _columns(table)):
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
            if _lit_kind(x) != kind and not {kind, _lit_kind(x)} <= {"number", "bool"}:
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
                bad = [p for p in value if not (_PCT.match(p) or p == "max")]
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


# -- checking -------------------------------------------------------------------------------------


def cell_text(v: Any, limit: int = 60) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.6g}"
    return safe_text(v, limit)


def describe_row(table: str, row: Mapping[str, Any], column: str | None = None) -> str:
    """One offender: the row's identifying columns and the tested column."""
    cols = list(ROW_IDS.get(table, ("session_id",)))
    if column and column not in cols:
        cols.append(column)
    parts = []
    for c in cols:
        if c in row:
            v = row[c]
            if c in ("namespace", "event", "target") and (v is None or v == ""):
                continue
            parts.append(f"{c}={cell_text(v)}")
    return " ".join(parts)


def _offenders(table: str, df: pd.DataFrame, column: str | None) -> tuple[list[str], int]:
    head = df.head(MAX_OFFENDERS)
    return [describe_row(table, r, column) for r in head.to_dict("records")], len(df)


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


def compute_stat(stat: str, values: pd.Series) -> float | None:
    """``stat`` of ``values`` (missing values dropped); None when there is nothing to compute."""
    if stat == "count":
        return float(values.notna().sum())
    if stat == "nunique":
        return float(values.nunique(dropna=True))
    nums = pd.to_numeric(values, errors="coerce").astype("float64").dropna()
    if not len(nums):
        return None
    arr = nums.to_numpy()
    if stat == "min":
        return float(arr.min())
    if stat == "max":
        return float(arr.max())
    if stat == "mean":
        return float(arr.mean())
    if stat == "sum":
        return float(arr.sum())
    if stat == "median":
        return float(np.percentile(arr, 50))
    m = _PCT.match(stat)
    assert m, stat
    return float(np.percentile(arr, float(m.group(1))))


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


def _check_table(r: Rule, df: pd.DataFrame) -> RuleResult:
    assert r.table is not None
    if r.column is not None and r.column not in df.columns:
        raise RulesError(f"rule {r.name!r}: the {r.table} table has no column {r.column!r}")
    rows = df[eval_where(r.where_tree, df)] if r.where_tree is not None else df
    subject = r.subject

    if r.kind == "expect":
        n = len(rows)
        if r.expect == "none":
            ok = n == 0
            msg = f"no {r.table} rows" if ok else f"{n} {r.table} row(s), expected none"
            offenders, total = ([], 0) if ok else _offenders(r.table, rows, None)
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
        offenders, total = _offenders(r.table, bad, r.column)
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
            offenders, total = _offenders(r.table, rows, r.column)
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
        offenders, total = _offenders(r.table, bad.drop(columns="_v", errors="ignore"), r.column)
    return RuleResult(r.name, False, msg, offenders, value, total)


def check_rules(
    analysis: Analysis, rules: Rules | Sequence[Rule] | Mapping[str, Any] | str | os.PathLike[str]
) -> list[RuleResult]:
    """Check every rule against ``analysis``; one :class:`RuleResult` per rule, in order.

    Raises :class:`RulesError` for a rule that cannot be checked (a summary path that does not
    exist, a column the tables lack).
    """
    rs = coerce_rules(rules)
    summary: Mapping[str, Any] | None = None
    out: list[RuleResult] = []
    for r in rs.rules:
        if r.kind == "summary":
            if summary is None:
                from dissect.output.summary import summary_of

                summary = summary_of(analysis)
            out.append(_check_summary(r, summary))
        else:
            assert r.table is not None
            out.append(_check_table(r, analysis.table(r.table)))
    return out


def format_results(results: Iterable[RuleResult], failures_only: bool = False) -> str:
    """The results as text, one rule per line with its offenders under it, and a total line."""
    results = list(results)
    lines: list[str] = []
    for res in results:
        if failures_only and res.passed:
            continue
        lines += res.lines()
    failed = sum(1 for r in results if not r.passed)
    lines.append(f"{len(results)} rule(s): {len(results) - failed} held, {failed} failed")
    return "\n".join(lines)


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


# -- JUnit XML ------------------------------------------------------------------------------------

_XML_BAD = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(s: str) -> str:
    return _XML_BAD.sub("\ufffd", s)


def junit_xml(
    results: Sequence[RuleResult], suite: str = "dissect.check", classname: str = "dissect.check"
) -> str:
    """A JUnit XML document: one ``<testcase>`` per rule, ``<failure>`` with the offenders."""
    import xml.etree.ElementTree as ET

    failures = sum(1 for r in results if not r.passed)
    root = ET.Element(
        "testsuites",
        name=_xml_text(suite),
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
    )
    ts = ET.SubElement(
        root,
        "testsuite",
        name=_xml_text(suite),
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time="0",
    )
    for r in results:
        tc = ET.SubElement(
            ts,
            "testcase",
            classname=_xml_text(classname),
            name=_xml_text(safe_text(r.name, None)),
            time="0",
        )
        if r.passed:
            ET.SubElement(tc, "system-out").text = _xml_text(r.message)
        else:
            fail = ET.SubElement(tc, "failure", message=_xml_text(r.message), type="RuleFailed")
            fail.text = _xml_text("\n".join(r.lines()))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(
    results: Sequence[RuleResult], path: str | os.PathLike[str], suite: str = "dissect.check"
) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(junit_xml(results, suite=suite, classname=suite))
