"""The Python API: the public façade.

    >>> import dissect
    >>> a = dissect.analyze("captures/sio4_websocket.pcap")
    >>> a.handshakes.groupby("layer").duration_ms.describe()

:func:`analyze` dissects captures into DataFrames (:class:`~dissect.output.tables.Analysis`);
:func:`run` hands the rows to any consumers (writers, an in-memory collector) and returns the
:class:`RunResult`, whose ``summary`` is summary.json. The machinery lives in :mod:`dissect.run`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dissect.errors import CaptureWarning
from dissect.output.writers import MemoryCollector
from dissect.run.core import CAPTURE_SUFFIXES, RunResult, capture_files, expand_paths, load_keylog
from dissect.run.filters import Filters
from dissect.run.local import run
from dissect.transport.limits import Limits

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

__all__ = ["CAPTURE_SUFFIXES", "Filters", "Limits", "RunResult", "analyze", "capture_files", "expand_paths", "run"]

_SORT_KEYS = {
    "sessions": ["session_id"],
    "handshakes": ["session_id", "ts_start"],
    "http": ["session_id", "ts_request"],
    "ws_frames": ["session_id", "frame_index"],
    "ws_messages": ["session_id", "message_index"],
    "sio_packets": ["ts", "session_id"],
}


def analyze(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
            port: Iterable[int] | int | None = None, host: Iterable[str] | str | None = None,
            session: Iterable[int] | int | None = None, namespace: Iterable[str] | str | None = None,
            limits: Limits | None = None, quiet: bool = True, jobs: int = 1, dask: Any = None,
            tls_keylog: str | os.PathLike[str] | None = None, payloads: bool = False,
            since: str | float | None = None, until: str | float | None = None,
            event: Iterable[str] | str | None = None) -> Analysis:
    """Dissect one or more captures (files or directories) into DataFrames.

    Returns an :class:`~dissect.output.tables.Analysis` whose attributes ``sessions``, ``handshakes``,
    ``http``, ``ws_frames``, ``ws_messages`` and ``sio_packets`` are the report tables and
    ``summary`` is the dict of ``summary.json``. Their columns are the fields of the NamedTuples in
    ``dissect.records`` (``Session``, ``Handshake``, ``HttpExchange``, ``WsFrame``, ``WsMessage``,
    ``SioPacket``: ``help(dissect.records)``); the meaning of every column and every anomaly and
    warning kind is in docs/REPORTS.md of dissect's source repository (not installed by pip). ``jobs`` > 1 spreads
    the work over that many processes (the same rows); ``dask`` (a scheduler address or a
    ``distributed.Client``) runs the work as tasks on a Dask cluster: each file indexed, then tasks
    dissecting the flows of the files they span (the rows of a local run, also for connections and
    Engine.IO sessions that span rotated files; their rows come back in memory here). ``tls_keylog`` is a TLS key
    log file (NSS format: SSLKEYLOGFILE, node ``--tls-keylog``, Python's ``keylog_filename``...)
    to decrypt TLS with; keys in pcapng Decryption Secrets Blocks are used without it.
    ``payloads`` adds the whole messages: ``ws_messages.payload`` and ``sio_packets.data``.
    ``since``/``until`` (epoch seconds, ISO 8601 or a datetime) keep the rows of that time window
    (every packet is still dissected, so sessions keep their context); ``event`` keeps the
    Socket.IO rows of those events and the ACKs answering them.

    A capture that cannot be read at all raises :class:`~dissect.errors.CaptureError` (an
    ``OSError``). One that is read only in part (a truncated file, corrupt records, packets cut by
    the snaplen) gives everything read, lists the problem in ``summary["warnings"]`` and warns with a
    :class:`~dissect.errors.CaptureWarning` (a ``UserWarning``) per kind of problem.
    """
    from dissect.output.tables import Analysis  # pandas: imported only where DataFrames are made

    filters = Filters.make(port, host, session, namespace, since, until, event)
    keylog = load_keylog(tls_keylog)
    if payloads:
        limits = dataclasses.replace(limits or Limits(), payloads=True)
    rows: dict[str, list[tuple]]
    if dask is not None:
        from dissect.run.dask import run_dask

        result, in_rows = run_dask(paths, dask, filters=filters, limits=limits, keylog=keylog)
        rows = in_rows or {}
    elif jobs > 1:
        from dissect.run.jobs import run_jobs

        result, in_memory = run_jobs(paths, jobs, filters=filters, limits=limits, keylog=keylog)
        rows = in_memory or {}
    else:
        collector = MemoryCollector()
        result = run(paths, [collector], filters=filters, limits=limits, quiet=quiet, keylog=keylog)
        rows = collector.rows
    rows["sio_broadcasts"] = list(result.broadcasts())  # made from every worker's rows, at the end
    _warn_capture_problems(result.summary)
    a = Analysis.from_rows(rows, result.summary)
    for name, keys in _SORT_KEYS.items():
        df = a.table(name)
        if len(df):
            setattr(a, name, df.sort_values(keys, kind="stable").reset_index(drop=True))
    return a


def _warn_capture_problems(summary: dict[str, Any]) -> None:
    """One :class:`CaptureWarning` per kind of reader warning of ``summary`` (they point at the
    caller of :func:`analyze`)."""
    by_kind = (summary.get("warnings") or {}).get("by_kind") or {}
    for kind, info in by_kind.items():
        count = info.get("count", 0) if isinstance(info, dict) else info
        details = info.get("details", []) if isinstance(info, dict) else []
        text = f"{kind} ({count})" + (f": {'; '.join(details)}" if details else "")
        warnings.warn(f"{text}; everything read before is analysed (summary['warnings'])", CaptureWarning,
                      stacklevel=3)
