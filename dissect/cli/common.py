"""What the ``dissect check`` and ``dissect diff`` commands share: analysing the captures, reading a
rules file, printing the results (and JUnit XML) and the exit codes.

Exit codes: 0 every rule held; 1 a rule failed (each failure printed with its offenders); 2 the
input is unusable (a capture that cannot be read, a rules file that cannot be used, a baseline
directory that is not a report), with one line on stderr saying why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from dissect.cli.options import make_filters
from dissect.errors import DissectError
from dissect.report.terminal import safe_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis
    from dissect.report.check import RuleResult, Rules

# The rules engine (and pandas under it) is imported inside the commands, so that loading the
# command line stays fast for the commands that do not need it.


def fail(cmd: str, why: str) -> NoReturn:
    """Say on one line of stderr why ``dissect CMD`` cannot go on, and exit 2."""
    one_line = " ".join(safe_text(why, 1000).split())
    click.echo(f"dissect {cmd}: {one_line}", err=True)
    raise SystemExit(2)


def _is_capture_error(e: BaseException) -> bool:
    try:
        from dissect.errors import DissectError
    except ImportError:  # pragma: no cover - before dissect.errors existed
        return type(e).__name__ == "CaptureError"
    return isinstance(e, DissectError) or type(e).__name__ == "CaptureError"


def analyze_captures(cmd: str, captures: Sequence[str], quiet: bool, filters: dict[str, Any] | None = None) -> Analysis:
    """``dissect.analyze`` of the captures; a capture that cannot be read exits 2 (:func:`fail`)."""
    import dissect

    try:
        return dissect.analyze(list(captures), quiet=quiet, **(filters or {}))
    except (OSError, DissectError) as e:
        fail(cmd, str(e))
    except Exception as e:
        if _is_capture_error(e):
            fail(cmd, str(e))
        raise


def filter_arguments(port: tuple[int, ...], host: tuple[str, ...], session_ids: tuple[int, ...],
                     namespace: tuple[str, ...], tls_keylog: str | None, payloads: bool = False,
                     since: str | None = None, until: str | None = None,
                     event: tuple[str, ...] = ()) -> dict[str, Any]:
    """The shared options (:func:`dissect.cli.options.filter_options`) as dissect.analyze()
    arguments."""
    make_filters(port, host, session_ids, namespace, since, until, event)  # validates: a usage error
    return {"port": port or None, "host": host or None, "session": session_ids or None,
            "namespace": namespace or None, "tls_keylog": tls_keylog, "payloads": payloads,
            "since": since, "until": until, "event": event or None}


def load_rules_file(cmd: str, path: str) -> Rules:
    """The rules file at ``path``; one that cannot be used exits 2 (:func:`fail`)."""
    from dissect.report.check import RulesError, load_rules

    try:
        return load_rules(path)
    except RulesError as e:
        fail(cmd, str(e))


def finish(
    cmd: str, results: list[RuleResult], junit: str | None, quiet: bool, suite: str
) -> NoReturn:
    """Write the JUnit XML (when asked), print the results (only the failures with ``quiet``) and exit
    1 when a rule failed, else 0."""
    from dissect.report.check import format_results, write_junit

    if junit:
        try:
            write_junit(results, junit, suite=suite)
        except OSError as e:
            fail(cmd, f"cannot write {junit}: {e.strerror or e}")
    failed = any(not r.passed for r in results)
    if not quiet or failed:
        click.echo(format_results(results, failures_only=quiet))
    raise SystemExit(1 if failed else 0)
