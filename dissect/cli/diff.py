"""The ``dissect diff`` command: an analysis compared with a baseline within the tolerances of a
rules file's ``[diff]`` table; either side is a report directory (from ``dissect report --out``) or
captures.

Exit codes: 0 within tolerances; 1 a difference beyond them; 2 unusable input (see :mod:`.common`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from dissect.cli.common import GateCommand, analyze_captures, fail, filter_arguments, finish, load_rules_file
from dissect.cli.options import dask_option, filter_options

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

# The report modules (and pandas under them) are imported inside the command, so that loading the
# command line stays fast for the commands that do not need it.

REPORT_FORMATS = ("csv", "jsonl", "parquet")


def is_report_dir(path: str) -> bool:
    """True for a directory holding a dissect report: summary.json or one of the tables."""
    if not os.path.isdir(path):
        return False
    from dissect.records import TABLES

    names = set(os.listdir(path))
    known = {f"{t}.{ext}" for t in TABLES for ext in REPORT_FORMATS} | {"summary.json"}
    return bool(names & known)


def _report(label: str, path: str) -> Analysis:
    from dissect.output.tables import Analysis

    try:
        return Analysis.from_dir(path)
    except Exception as e:  # a damaged CSV/JSON in the report
        fail("diff", f"{label}: {path}: cannot read the report: {type(e).__name__}: {e}")


def load_side(label: str, paths: Sequence[str], quiet: bool, filters: dict[str, Any],
              dask: str | None = None) -> Analysis:
    """One side of the comparison: a report directory, or captures (files or directories of them)
    analysed with the filters (on the Dask cluster at ``dask`` when given); anything else exits 2
    naming the side (``baseline: ...``)."""
    reports = [p for p in paths if is_report_dir(p)]
    if reports and len(paths) > 1:
        fail("diff", f"{label}: give one report directory or captures, not both ({reports[0]} is a report)")
    if reports:
        return _report(label, reports[0])
    return analyze_captures("diff", paths, quiet, filters, label=f"{label}: ", dask=dask)


@click.command("diff", cls=GateCommand)
@click.argument("baseline", metavar="BASELINE")
@click.argument("current", nargs=-1, required=True, metavar="CURRENT...")
@click.option(
    "--rules",
    "rules_path",
    metavar="RULES.toml",
    help="Tolerances from the [diff] table of a rules file (its [[rule]] tables are for dissect check).",
)
@click.option(
    "--junit", "junit_path", metavar="OUT.xml",
    help="Also write the results as JUnit XML, one test case per comparison; on exit 2 one error "
    "case saying why.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the differences (and no progress).")
@dask_option("each side given as captures is dissected there; its rows come back to this machine as tables in "
             "memory, as a local diff holds them (no part file, so no --dask-scratch).")
@filter_options
def diff(
    baseline: str,
    current: tuple[str, ...],
    rules_path: str | None,
    junit_path: str | None,
    quiet: bool,
    dask_address: str | None,
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
    """Compare CURRENT with BASELINE; exit 1 on a difference beyond the tolerances.

    Each side is a report directory (dissect report --out DIR) or captures (files or directories
    of them; the filters apply to captures, a report is taken as it was written).

    \b
    Compared (never timestamps, addresses, ports or session ids):
      rows and counts by key of every table (EVENT "chat" on /chat c2s, text c2s, GET 101);
      anomalies by kind, lost bytes, retransmissions, failed handshakes by layer (these fail only
        when they grow); sessions by close, WebSocket close codes, TLS sessions decrypted;
      p50/p90/p99 of handshake durations per layer, http durations and Socket.IO ack latency.
    Tolerances: the [diff] table of --rules (defaults and keys: docs/ci-gating.md in dissect's
    source repository); a duration may move by max(1 ms, 50 %) by default, every count by 0.

    Exit codes: 0 within tolerances, 1 a difference beyond them, 2 unusable input (one line on
    stderr says why; --junit then writes one error case).
    """
    from dissect.report.diff import diff_reports

    tolerances: Any = load_rules_file("diff", rules_path).diff if rules_path else None
    filters = filter_arguments(port, host, session_ids, namespace, tls_keylog, payloads, since, until, event)
    base = load_side("baseline", [baseline], quiet, filters, dask_address)
    cur = load_side("current", current, quiet, filters, dask_address)
    results = diff_reports(base, cur, tolerances)
    finish("diff", results, junit_path, quiet, "dissect.diff", noun="comparison(s)")
