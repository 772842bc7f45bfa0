"""The ``dissect diff`` command: captures compared with a baseline report within the tolerances of a
rules file's ``[diff]`` table.

Exit codes: 0 within tolerances; 1 a difference beyond them; 2 unusable input (see :mod:`.common`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from dissect.cli.common import analyze_captures, fail, filter_arguments, finish, load_rules_file
from dissect.cli.options import filter_options

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

# The report modules (and pandas under them) are imported inside the command, so that loading the
# command line stays fast for the commands that do not need it.


def _baseline(path: str) -> Analysis:
    from dissect.output.tables import TABLE_NAMES, Analysis

    if not os.path.isdir(path):
        fail("diff", f"{path}: baseline is not a directory (write one with dissect report --out)")
    names = set(os.listdir(path))
    known = {f"{t}.{ext}" for t in TABLE_NAMES for ext in ("csv", "jsonl")} | {"summary.json"}
    if not names & known:
        fail("diff", f"{path}: no report tables in the baseline directory")
    try:
        return Analysis.from_dir(path)
    except Exception as e:  # a damaged CSV/JSON in the baseline
        fail("diff", f"{path}: cannot read the baseline report: {type(e).__name__}: {e}")


@click.command("diff")
@click.argument("baseline_dir", metavar="BASELINE_DIR")
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "--rules",
    "rules_path",
    metavar="RULES.toml",
    help="Tolerances from the [diff] table of a rules file.",
)
@click.option(
    "--junit", "junit_path", metavar="OUT.xml", help="Also write the results as JUnit XML."
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the differences (and no progress).")
@filter_options
def diff(
    baseline_dir: str,
    captures: tuple[str, ...],
    rules_path: str | None,
    junit_path: str | None,
    quiet: bool,
    port: tuple[int, ...],
    host: tuple[str, ...],
    session_ids: tuple[int, ...],
    namespace: tuple[str, ...],
    tls_keylog: str | None,
    payloads: bool,
    since: str | None,
    until: str | None,
    event: tuple[str, ...],
) -> None:
    """Compare CAPTURES with the report in BASELINE_DIR (from dissect report --out).

    Exit codes: 0 within tolerances, 1 a difference beyond them, 2 unusable input.
    """
    from dissect.report.diff import diff_reports

    tolerances: Any = load_rules_file("diff", rules_path).diff if rules_path else None
    baseline = _baseline(baseline_dir)
    current = analyze_captures("diff", captures, quiet, filter_arguments(port, host, session_ids, namespace,
                                                                           tls_keylog, payloads, since, until,
                                                                           event))
    results = diff_reports(baseline, current, tolerances)
    finish("diff", results, junit_path, quiet, "dissect.diff")
