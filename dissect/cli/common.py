"""What the ``dissect check`` and ``dissect diff`` commands share: analysing the captures, reading a
rules file, printing the results (and JUnit XML) and the exit codes.

Exit codes: 0 every rule held; 1 a rule failed (each failure printed with its offenders); 2 the
input is unusable (a capture that cannot be read, a rules file that cannot be used or holds no rule,
a baseline that is neither a report nor captures), with one line on stderr saying why, and the
``--junit`` file (when asked) holding one error case with the same line.
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


class Unusable(SystemExit):
    """Exit 2 of ``dissect check``/``diff``: the input is unusable, ``why`` says how (one line)."""

    def __init__(self, cmd: str, why: str, junit: bool = True) -> None:
        super().__init__(2)
        self.cmd = cmd
        self.why = why
        self.junit = junit  # False: the JUnit file itself could not be written


def fail(cmd: str, why: str, junit: bool = True) -> NoReturn:
    """Say on one line of stderr why ``dissect CMD`` cannot go on, and exit 2 (:class:`Unusable`:
    :class:`GateCommand` then writes the ``--junit`` file with an error case)."""
    one_line = " ".join(safe_text(why, 1000).split())
    click.echo(f"dissect {cmd}: {one_line}", err=True)
    raise Unusable(cmd, one_line, junit)


def _junit_in_args(args: Sequence[str]) -> str | None:
    """The value of ``--junit`` in raw command-line arguments (before click parsed them)."""
    found = None
    for i, a in enumerate(args):
        if a == "--":
            break
        if a == "--junit" and i + 1 < len(args):
            found = args[i + 1]
        elif a.startswith("--junit="):
            found = a[len("--junit="):]
    return found


def write_error_junit(cmd: str, path: str | None, why: str) -> None:
    """Write the JUnit file of a run that stops with exit 2 (one test case with an ``<error>``);
    a file that cannot be written is said on stderr."""
    if not path:
        return
    from dissect.report.check import write_junit_error

    try:
        write_junit_error(f"dissect {cmd}: {why}", path, suite=f"dissect.{cmd}")
    except OSError as e:
        click.echo(f"dissect {cmd}: cannot write {path}: {e.strerror or e}", err=True)


class GateCommand(click.Command):
    """A command of the CI gate (check, diff): whenever it stops with exit 2 (a usage error, an
    unreadable capture, unusable rules or baseline) and ``--junit`` was given, the JUnit file is
    still written, with one error case saying why, so a publisher run with ``if: always()`` finds
    it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        raw = list(args)  # click consumes the list it parses
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            write_error_junit(str(self.name), _junit_in_args(raw), e.format_message())
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Unusable as e:
            if e.junit:
                write_error_junit(e.cmd, ctx.params.get("junit_path"), e.why)
            raise
        except click.UsageError as e:
            write_error_junit(str(self.name), ctx.params.get("junit_path"), e.format_message())
            raise


def _is_capture_error(e: BaseException) -> bool:
    try:
        from dissect.errors import DissectError
    except ImportError:  # pragma: no cover - before dissect.errors existed
        return type(e).__name__ == "CaptureError"
    return isinstance(e, DissectError) or type(e).__name__ == "CaptureError"


def analyze_captures(cmd: str, captures: Sequence[str], quiet: bool, filters: dict[str, Any] | None = None,
                     label: str = "", dask: str | None = None) -> Analysis:
    """``dissect.analyze`` of the captures (on the Dask cluster at ``dask`` when given); a capture
    that cannot be read, or a scheduler that cannot be reached, exits 2 (:func:`fail`), the message
    starting with ``label`` when given (``baseline: ``)."""
    import dissect

    try:
        return dissect.analyze(list(captures), quiet=quiet, dask=dask or None, **(filters or {}))
    except (OSError, DissectError) as e:
        fail(cmd, label + str(e))
    except Exception as e:
        if _is_capture_error(e):
            fail(cmd, label + str(e))
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
    cmd: str, results: list[RuleResult], junit: str | None, quiet: bool, suite: str,
    noun: str = "rule(s)",
) -> NoReturn:
    """Write the JUnit XML (when asked), print the results (only the failures with ``quiet``) and exit
    1 when a rule failed, else 0."""
    from dissect.report.check import format_results, write_junit

    if junit:
        try:
            write_junit(results, junit, suite=suite)
        except OSError as e:
            fail(cmd, f"cannot write {junit}: {e.strerror or e}", junit=False)
    failed = any(not r.passed for r in results)
    if not quiet or failed:
        click.echo(format_results(results, failures_only=quiet, noun=noun))
    raise SystemExit(1 if failed else 0)
