"""The ``dissect check`` and ``dissect diff`` commands (added to the ``dissect`` group by cli.py).

Exit codes: 0 every rule held; 1 a rule failed (each failure printed with its offenders); 2 the
input is unusable (a capture that cannot be read, a rules file that cannot be used, a baseline
directory that is not a report), with one line on stderr saying why.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from dissect.cli.options import filter_options, make_filters
from dissect.errors import DissectError
from dissect.report.terminal import safe_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis
    from dissect.report.check import RuleResult, Rules

# The rules engine (and pandas under it) is imported inside the commands, so that loading the
# command line stays fast for the commands that do not need it.


def _fail(cmd: str, why: str) -> NoReturn:
    one_line = " ".join(safe_text(why, 1000).split())
    click.echo(f"dissect {cmd}: {one_line}", err=True)
    raise SystemExit(2)


def _is_capture_error(e: BaseException) -> bool:
    try:
        from dissect.errors import DissectError
    except ImportError:  # pragma: no cover - before dissect.errors existed
        return type(e).__name__ == "CaptureError"
    return isinstance(e, DissectError) or type(e).__name__ == "CaptureError"


def _analyze(cmd: str, captures: Sequence[str], quiet: bool, filters: dict[str, Any] | None = None) -> Analysis:
    import dissect

    try:
        return dissect.analyze(list(captures), quiet=quiet, **(filters or {}))
    except (OSError, DissectError) as e:
        _fail(cmd, str(e))
    except Exception as e:
        if _is_capture_error(e):
            _fail(cmd, str(e))
        raise


def _filters(port: tuple[int, ...], host: tuple[str, ...], session_ids: tuple[int, ...],
             namespace: tuple[str, ...]) -> dict[str, Any]:
    """The shared --port/--host/--session/--namespace options as dissect.analyze() arguments."""
    make_filters(port, host, session_ids, namespace)  # validates (bad --host: usage error)
    return {"port": port or None, "host": host or None, "session": session_ids or None,
            "namespace": namespace or None}


def _load(cmd: str, path: str) -> Rules:
    from dissect.report.check import RulesError, load_rules

    try:
        return load_rules(path)
    except RulesError as e:
        _fail(cmd, str(e))


def _finish(
    cmd: str, results: list[RuleResult], junit: str | None, quiet: bool, suite: str
) -> NoReturn:
    from dissect.report.check import format_results, write_junit

    if junit:
        try:
            write_junit(results, junit, suite=suite)
        except OSError as e:
            _fail(cmd, f"cannot write {junit}: {e.strerror or e}")
    failed = any(not r.passed for r in results)
    if not quiet or failed:
        click.echo(format_results(results, failures_only=quiet))
    raise SystemExit(1 if failed else 0)


@click.command("check")
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "--rules",
    "rules_path",
    required=True,
    metavar="RULES.toml",
    help="The rules to check (format: docs/ci-gating.md).",
)
@click.option(
    "--junit", "junit_path", metavar="OUT.xml", help="Also write the results as JUnit XML."
)
@click.option("--quiet", "-q", is_flag=True, help="Print only failed rules (and no progress).")
@filter_options
def check(captures: tuple[str, ...], rules_path: str, junit_path: str | None, quiet: bool,
          port: tuple[int, ...], host: tuple[str, ...], session_ids: tuple[int, ...],
          namespace: tuple[str, ...]) -> None:
    """Check the rules of RULES.toml against CAPTURES; exit 1 when one fails.

    Exit codes: 0 all rules hold, 1 a rule failed, 2 unusable capture or rules.
    """
    from dissect.report.check import RulesError, check_rules

    rules = _load("check", rules_path)
    analysis = _analyze("check", captures, quiet, _filters(port, host, session_ids, namespace))
    try:
        results = check_rules(analysis, rules)
    except RulesError as e:
        _fail("check", str(e))
    _finish("check", results, junit_path, quiet, "dissect.check")


def _baseline(path: str) -> Analysis:
    from dissect.output.tables import TABLE_NAMES, Analysis

    if not os.path.isdir(path):
        _fail("diff", f"{path}: baseline is not a directory (write one with dissect report --out)")
    names = set(os.listdir(path))
    known = {f"{t}.{ext}" for t in TABLE_NAMES for ext in ("csv", "jsonl")} | {"summary.json"}
    if not names & known:
        _fail("diff", f"{path}: no report tables in the baseline directory")
    try:
        return Analysis.from_dir(path)
    except Exception as e:  # a damaged CSV/JSON in the baseline
        _fail("diff", f"{path}: cannot read the baseline report: {type(e).__name__}: {e}")


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
) -> None:
    """Compare CAPTURES with the report in BASELINE_DIR (from dissect report --out).

    Exit codes: 0 within tolerances, 1 a difference beyond them, 2 unusable input.
    """
    from dissect.report.diff import diff_reports

    tolerances: Any = _load("diff", rules_path).diff if rules_path else None
    baseline = _baseline(baseline_dir)
    current = _analyze("diff", captures, quiet, _filters(port, host, session_ids, namespace))
    results = diff_reports(baseline, current, tolerances)
    _finish("diff", results, junit_path, quiet, "dissect.diff")
