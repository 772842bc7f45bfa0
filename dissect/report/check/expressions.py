"""Expressions of a rule over a table: the kind of each column, ``where`` (parsed with :mod:`ast`,
validated against the table's columns, evaluated over a DataFrame by dissect itself, never by
pandas) and the aggregates a ``stat`` computes (count, min, max, mean, median, sum, nunique, pNN)."""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from dissect.records import TABLES, column_types
from dissect.report.check.model import RulesError

STATS = ("count", "min", "max", "mean", "median", "sum", "nunique")
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
"""A percentile stat, ``pNN`` or ``pNN.N`` (p50, p99.9): group 1 is the percentage."""
MAX_WHERE = 2000


# -- column kinds ---------------------------------------------------------------------------------


def column_kind(table: str, column: str) -> str:
    """``text``, ``number`` or ``bool`` for a contract column."""
    hint = column_types(TABLES[table]).get(column, "")
    if hint.startswith("bool"):
        return "bool"
    if hint.startswith(("int", "float")):
        return "number"
    return "text"


def table_columns(table: str) -> tuple[str, ...]:
    """The column names of a contract table, in order."""
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


def literal_kind(v: Any) -> str:
    """``none``, ``bool``, ``number`` or ``text``: the kind of a literal value (a rule's or a
    ``where``'s), as :func:`column_kind` names a column's."""
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
        self.columns = set(table_columns(table))

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
            return "lit-" + literal_kind(v)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            kinds = set()
            for e in node.elts:
                ok, v = _literal(e)
                if not ok:
                    raise self.fail("a list may hold only literals")
                if v is not None:
                    kinds.add(literal_kind(v))
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


# -- aggregates -----------------------------------------------------------------------------------


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
    m = PERCENTILE.match(stat)
    assert m, stat
    return float(np.percentile(arr, float(m.group(1))))
