"""Reports of an analysis: HTML (:mod:`.html`), terminal (:mod:`.terminal`), CI rules
(:mod:`.check`) and baseline comparison (:mod:`.diff`). The click commands live in :mod:`.commands`.

plotly is imported only when a report is rendered, so this package works without it.
"""

from __future__ import annotations

from .check import (
    DiffConfig,
    Rule,
    RuleResult,
    Rules,
    RulesError,
    assert_rules,
    check_rules,
    junit_xml,
    load_rules,
    parse_rules,
    write_junit,
)
from .diff import diff_reports
from .html import render_html
from .terminal import print_summary, safe_text

__all__ = [
    "DiffConfig",
    "Rule",
    "RuleResult",
    "Rules",
    "RulesError",
    "assert_rules",
    "check_rules",
    "diff_reports",
    "junit_xml",
    "load_rules",
    "parse_rules",
    "print_summary",
    "render_html",
    "safe_text",
    "write_junit",
]
