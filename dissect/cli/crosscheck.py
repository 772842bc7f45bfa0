"""``dissect crosscheck``: dissect beside Wireshark's own dissectors (:mod:`dissect.report.crosscheck`)."""

from __future__ import annotations

import json
import sys

import click

from dissect.cli.options import make_filters, port_host_options, tls_keylog_option
from dissect.errors import CaptureError, DissectError
from dissect.run.core import expand_paths

# report.crosscheck (and pandas under it) is imported when the command runs: the command line
# starts without pandas for the commands that do not need it. The engines' names, as it knows them:
ENGINE_NAMES = ["pyshark", "tshark"]


@click.command()
@click.argument("captures", nargs=-1, required=True)
@click.option("--engine", type=click.Choice(ENGINE_NAMES), default="tshark", show_default=True,
              help="Run Wireshark's dissectors through tshark -T fields, or through pyshark.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the disagreements.")
@click.option("--junit", "junit_path", metavar="OUT.xml",
              help="Also write JUnit XML: one test case per check per capture.")
@port_host_options
@tls_keylog_option
def crosscheck(captures: tuple[str, ...], engine: str, as_json: bool, quiet: bool, junit_path: str | None,
               port: tuple[int, ...], host: tuple[str, ...], tls_keylog: str | None) -> None:
    """Compare dissect with Wireshark's own dissectors on CAPTURES: TCP streams, roles, handshake
    times and bytes, HTTP exchanges, WebSocket handshakes and frames.

    Each disagreement names dissect's session and Wireshark's stream (type `tcp.stream == N` in
    Wireshark's filter bar to see it); times are UTC, with the epoch seconds in brackets. A capture
    cut short is compared as far as tshark reads it, and the result says so.

    Exit 0 when they agree, 1 on any disagreement, 2 when a capture is unusable or tshark is
    missing.

    There is no --dask: each capture file is compared alone, and tshark, the larger part of the
    work, runs on this machine.
    """
    make_filters(port, host, (), ())  # a bad --host is a usage error (exit 2)
    from dissect.report.crosscheck import CrossCheckResult, WiresharkError, compare, require_tshark

    results: list[CrossCheckResult] = []
    try:
        require_tshark()
        for path in expand_paths(list(captures)):
            results.append(compare(path, engine, tls_keylog, port, host))
    except (CaptureError, WiresharkError, DissectError) as e:
        click.echo(f"dissect: {e}", err=True)
        sys.exit(2)
    if junit_path:
        from dissect.report.check.junit import write_junit

        try:
            write_junit([c for r in results for c in r.junit_results()], junit_path, suite="dissect.crosscheck")
        except OSError as e:
            click.echo(f"dissect crosscheck: cannot write {junit_path}: {e.strerror or e}", err=True)
            sys.exit(2)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        texts = [r.render(quiet) for r in results]
        text = "\n".join(t for t in texts if t)
        if text:
            click.echo(text)
    sys.exit(0 if all(r.ok for r in results) else 1)
