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

The modules: :mod:`.model` (the rules and their error), :mod:`.expressions` (column kinds,
``where``, the aggregates), :mod:`.rules` (reading and validating a rules file), :mod:`.results`
(a rule's outcome and its text), :mod:`.checking` (rules against an analysis) and :mod:`.junit`
(JUnit XML). Every name is importable from this package.
"""

from __future__ import annotations

from dissect.report.check.checking import assert_rules, check_rules, require_rules
from dissect.report.check.expressions import (
    MAX_WHERE,
    PERCENTILE,
    STATS,
    column_kind,
    compile_where,
    compute_stat,
    eval_where,
    literal_kind,
    table_columns,
)
from dissect.report.check.junit import junit_error_xml, junit_xml, write_junit, write_junit_error
from dissect.report.check.model import DiffConfig, Rule, Rules, RulesError
from dissect.report.check.results import (
    MAX_OFFENDERS,
    ROW_DETAILS,
    ROW_IDS,
    RuleResult,
    cell_text,
    describe_row,
    format_results,
    offender_lines,
    source_files,
)
from dissect.report.check.rules import (
    EXPECTS,
    RULE_KEYS,
    coerce_rules,
    diff_config,
    load_rules,
    parse_rules,
    rules_from_dict,
)

__all__ = [
    "EXPECTS",
    "MAX_OFFENDERS",
    "MAX_WHERE",
    "PERCENTILE",
    "ROW_DETAILS",
    "ROW_IDS",
    "RULE_KEYS",
    "STATS",
    "DiffConfig",
    "Rule",
    "RuleResult",
    "Rules",
    "RulesError",
    "assert_rules",
    "cell_text",
    "check_rules",
    "coerce_rules",
    "column_kind",
    "compile_where",
    "compute_stat",
    "describe_row",
    "diff_config",
    "eval_where",
    "format_results",
    "junit_error_xml",
    "junit_xml",
    "literal_kind",
    "load_rules",
    "offender_lines",
    "parse_rules",
    "require_rules",
    "rules_from_dict",
    "source_files",
    "table_columns",
    "write_junit",
    "write_junit_error",
]
