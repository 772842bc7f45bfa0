"""The rules engine's data: a validated rules file (:class:`Rules` of :class:`Rule`, with the
:class:`DiffConfig` tolerances of its ``[diff]`` table) and :class:`RulesError` for one that cannot
be used."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from dissect.errors import DissectError


class RulesError(DissectError):
    """A rules file that cannot be used: bad TOML, an unknown table or column, an invalid rule or
    ``where``. The CLI prints it on one line and exits 2."""


@dataclass
class DiffConfig:
    """The ``[diff]`` table of a rules file: tolerances of ``dissect diff``.

    Each compared figure may move by the larger of an absolute and a relative allowance
    (``max(abs, rel * baseline)``): row counts and counts by key by ``count_*``; anomalies (per kind
    and table), lost bytes and retransmissions by their own pair, and only upwards (fewer is never a
    regression); duration percentiles by ``duration_*``.
    """

    count_tolerance: int = 0
    count_rel_tolerance: float = 0.0
    anomaly_tolerance: int = 0
    anomaly_rel_tolerance: float = 0.0
    lost_bytes_tolerance: int = 0
    lost_bytes_rel_tolerance: float = 0.0
    retransmission_tolerance: int = 0
    retransmission_rel_tolerance: float = 0.0
    duration_rel_tolerance: float = 0.5
    duration_abs_tolerance_ms: float = 1.0
    percentiles: tuple[str, ...] = ("p50", "p90", "p99")
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
    """A validated rules file: its rules in order, the tolerances of its ``[diff]`` table and where it
    came from."""

    rules: list[Rule] = field(default_factory=list)
    diff: DiffConfig = field(default_factory=DiffConfig)
    source: str = "<rules>"
