"""Command-line options shared by every command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dissect.run.filters import Filters

F = TypeVar("F", bound=Callable[..., Any])


def filter_options(f: F) -> F:
    """``--port``, ``--host``, ``--session``, ``--namespace``: shared by every command."""
    f = click.option("--namespace", multiple=True, help="Only Socket.IO rows of this namespace (repeatable).")(f)
    f = click.option("--session", "session_ids", multiple=True, type=int,
                     help="Only rows of this session_id (repeatable).")(f)
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
