"""Reports of an analysis: HTML (:mod:`.html`), terminal (:mod:`.terminal`), CI rules
(:mod:`.check`) and baseline comparison (:mod:`.diff`). The click commands live in :mod:`.commands`.

plotly is imported only when a report is rendered, so this package works without it.
"""

from __future__ import annotations

import importlib
from typing import Any

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

_HOMES = {
    "diff_reports": "diff", "render_html": "html", "print_summary": "terminal", "safe_text": "terminal",
}


def __getattr__(name: str) -> Any:
    # Loaded on first use: pandas and plotly stay out of the command line's start-up.
    if name not in __all__:
        raise AttributeError(f"module 'dissect.report' has no attribute {name!r}")
    module = importlib.import_module(f".{_HOMES.get(name, 'check')}", __name__)
    return getattr(module, name)
