"""Command-line options shared by every command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dissect.run.filters import Filters

F = TypeVar("F", bound=Callable[..., Any])


def filter_options(f: F) -> F:
    """``--port``, ``--host``, ``--session``, ``--namespace``, ``--since``, ``--until``, ``--event``,
    ``--payloads`` and ``--tls-keylog``: shared by every command that dissects."""
    f = tls_keylog_option(f)
    f = click.option("--event", multiple=True,
                     help="Only Socket.IO rows of this event (and the ACKs answering it) (repeatable).")(f)
    f = click.option("--until", metavar="TIME",
                     help="Only rows up to TIME (epoch seconds or ISO 8601; UTC without a zone).")(f)
    f = click.option("--since", metavar="TIME",
                     help="Only rows from TIME on (epoch seconds or ISO 8601). Sessions that straddle the "
                          "window keep their context: only their rows outside it are dropped.")(f)
    f = click.option("--payloads", is_flag=True,
                     help="Rows carry whole messages: ws_messages.payload (text, or binary as base64) and "
                          "sio_packets.data (the packet's JSON as sent). Off by default (size).")(f)
    f = click.option("--namespace", multiple=True, help="Only Socket.IO rows of this namespace (repeatable).")(f)
    f = click.option("--session", "session_ids", multiple=True, type=int,
                     help="Only rows of this session_id (repeatable).")(f)
    return port_host_options(f)


def port_host_options(f: F) -> F:
    """``--port`` and ``--host``: the flow filters (alone on ``crosscheck``, which has no rows to
    filter by session or namespace)."""
    f = click.option("--host", multiple=True,
                     help="Only flows to or from this IP address, IPv6 with or without brackets "
                          "(::1 or [::1]) (repeatable).")(f)
    f = click.option("--port", multiple=True, type=click.IntRange(0, 65535),
                     help="Only flows with this port on either side (repeatable).")(f)
    return f


def make_filters(port: tuple[int, ...], host: tuple[str, ...], session_ids: tuple[int, ...],
                 namespace: tuple[str, ...], since: str | None = None, until: str | None = None,
                 event: tuple[str, ...] = ()) -> Filters:
    try:
        return Filters.make(port, host, session_ids, namespace, since, until, event)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def tls_keylog_option(f: F) -> F:
    """``--tls-keylog FILE``: shared by every command that dissects."""
    return click.option(
        "--tls-keylog", metavar="FILE", type=click.Path(dir_okay=False),
        help="TLS key log (NSS format: SSLKEYLOGFILE, node --tls-keylog, Python keylog_filename, curl, "
             "browsers) to decrypt TLS 1.2/1.3 with. Keys in pcapng Decryption Secrets Blocks are used "
             "without it.")(f)


def dask_option(what: str) -> Callable[[F], F]:
    """``--dask ADDRESS`` of the commands that dissect captures and keep no table files (summary,
    check, diff); ``what`` says what comes back from the tasks."""
    def deco(f: F) -> F:
        return click.option(
            "--dask", "dask_address", metavar="ADDRESS",
            help="Dissect the captures as tasks on the Dask cluster at ADDRESS (needs the dask extra), as dissect "
                 f"report --dask does (the same figures; the workers must read the captures at the paths given): "
                 f"{what}")(f)
    return deco

