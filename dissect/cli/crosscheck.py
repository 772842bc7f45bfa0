"""``dissect crosscheck``: dissect beside Wireshark's own dissectors (:mod:`dissect.report.crosscheck`)."""

from __future__ import annotations

import json
import sys

import click

from dissect.cli.options import tls_keylog_option
from dissect.errors import CaptureError, DissectError
from dissect.report.crosscheck import ENGINES, CrossCheckResult, WiresharkError, compare, require_tshark
from dissect.run.core import expand_paths


@click.command()
@click.argument("captures", nargs=-1, required=True)
@click.option("--engine", type=click.Choice(sorted(ENGINES)), default="tshark", show_default=True,
              help="Run Wireshark's dissectors through tshark -T fields, or through pyshark.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@tls_keylog_option
def crosscheck(captures: tuple[str, ...], engine: str, as_json: bool, tls_keylog: str | None) -> None:
    """Compare dissect with Wireshark's own dissectors on CAPTURES: TCP streams, roles, handshake
    times and bytes, HTTP exchanges, WebSocket handshakes and frames.

    Exit 0 when they agree, 1 on any disagreement, 2 when a capture is unusable or tshark is
    missing.
    """
    results: list[CrossCheckResult] = []
    try:
        require_tshark()
        for path in expand_paths(list(captures)):
            results.append(compare(path, engine, tls_keylog))
    except (CaptureError, WiresharkError, DissectError) as e:
        click.echo(f"dissect: {e}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            click.echo(r.render())
    sys.exit(0 if all(r.ok for r in results) else 1)
