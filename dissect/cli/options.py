"""Command-line options shared by every command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dissect.run.filters import Filters

F = TypeVar("F", bound=Callable[..., Any])


def filter_options(f: F) -> F:
    """``--port``, ``--host``, ``--session``, ``--namespace`` and ``--tls-keylog``: shared by every
    command that dissects."""
    f = tls_keylog_option(f)
    f = click.option("--namespace", multiple=True, help="Only Socket.IO rows of this namespace (repeatable).")(f)
    f = click.option("--session", "session_ids", multiple=True, type=int,
                     help="Only rows of this session_id (repeatable).")(f)
    return port_host_options(f)


def port_host_options(f: F) -> F:
    """``--port`` and ``--host``: the flow filters (alone on ``crosscheck``, which has no rows to
    filter by session or namespace)."""
    f = click.option("--host", multiple=True, help="Only flows to or from this IP address (repeatable).")(f)
    f = click.option("--port", multiple=True, type=int,
                     help="Only flows with this port on either side (repeatable).")(f)
    return f


def make_filters(port: tuple[int, ...], host: tuple[str, ...], session_ids: tuple[int, ...],
                 namespace: tuple[str, ...]) -> Filters:
    try:
        return Filters.make(port, host, session_ids, namespace)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def tls_keylog_option(f: F) -> F:
    """``--tls-keylog FILE``: shared by every command that dissects."""
    return click.option(
        "--tls-keylog", metavar="FILE", type=click.Path(dir_okay=False),
        help="TLS key log (NSS format: SSLKEYLOGFILE, node --tls-keylog, Python keylog_filename, curl, "
             "browsers) to decrypt TLS 1.2/1.3 with. Keys in pcapng Decryption Secrets Blocks are used "
             "without it.")(f)
