"""The ``dissect check`` command: the rules of a rules file against captures, for CI.

Exit codes: 0 every rule held; 1 a rule failed; 2 unusable capture or rules (see :mod:`.common`).
"""

from __future__ import annotations

import click

from dissect.cli.common import (
    GateCommand,
    analyze_captures,
    fail,
    filter_arguments,
    finish,
    load_rules_file,
)
from dissect.cli.options import dask_option, filter_options

# The rules engine (and pandas under it) is imported inside the command, so that loading the
# command line stays fast for the commands that do not need it.


@click.command("check", cls=GateCommand)
@click.argument("captures", nargs=-1, required=True)
@click.option(
    "--rules",
    "rules_path",
    required=True,
    metavar="RULES.toml",
    help="The rules to check: a TOML file of [[rule]] tables (example above; at least one: an empty "
    "file is an error).",
)
@click.option(
    "--junit", "junit_path", metavar="OUT.xml",
    help="Also write the results as JUnit XML, one test case per rule; on exit 2 one error case "
    "saying why.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only failed rules (and no progress).")
@dask_option("the rows come back to this machine as tables in memory, as a local check holds them (no part "
             "file, so no --dask-scratch).")
@filter_options
def check(captures: tuple[str, ...], rules_path: str, junit_path: str | None, quiet: bool, dask_address: str | None,
          port: tuple[int, ...], host: tuple[str, ...], session_ids: tuple[int, ...],
          namespace: tuple[str, ...], tls_keylog: str | None, payloads: bool, since: str | None,
          until: str | None, event: tuple[str, ...]) -> None:
    """Check the rules of RULES.toml against CAPTURES; exit 1 when one fails.

    Each failed rule is followed by up to ten offending rows (a handshake's detail, such as a
    CONNECT_ERROR message, included; with several captures, each row's source_file).

    Exit codes: 0 all rules hold, 1 a rule failed, 2 unusable input: a capture that cannot be read,
    a rules file that cannot be used or holds no rule (one line on stderr says why; --junit then
    writes one error case).

    \b
    A rule looks at the rows of a table (the tables `dissect report` writes, whose
    columns are the NamedTuples of dissect.records) or at a summary.json figure:
      [[rule]]
      name = "every handshake succeeds"     # unique; the JUnit test case name
      table = "handshakes"
      where = "not ok"                      # optional row filter: == != < <= > >= in, and/or/not
      expect = "none"                       # or "some"
      [[rule]]
      name = "socket.io connect p90 under 100 ms"
      metric = "handshakes.duration_ms"     # table.column
      where = "layer == 'socketio'"
      stat = "p90"                          # count nunique min max mean median sum pNN
      max = 100                             # and/or min, equals
      [[rule]]
      name = "close codes"
      table = "ws_frames"
      column = "close_code"
      allowed = [1000, 1001]
      [[rule]]
      name = "capture read without warnings"
      metric = "summary.warnings.total"     # a summary.json figure by its dotted path
      max = 0

    The full reference is docs/ci-gating.md in dissect's source repository (not installed by pip).
    """
    from dissect.report.check import RulesError, check_rules, require_rules

    rules = load_rules_file("check", rules_path)
    try:
        require_rules(rules)
    except RulesError as e:
        fail("check", str(e))
    analysis = analyze_captures("check", captures, quiet, filter_arguments(port, host, session_ids, namespace,
                                                                            tls_keylog, payloads, since, until,
                                                                            event),
                                dask=dask_address)
    try:
        results = check_rules(analysis, rules)
    except RulesError as e:
        fail("check", str(e))
    finish("check", results, junit_path, quiet, "dissect.check")
