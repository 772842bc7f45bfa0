"""The Python API and the run loop shared by every command.

    >>> import dissect
    >>> a = dissect.analyze("captures/sio4_websocket.pcap")
    >>> a.handshakes.groupby("layer").duration_ms.describe()

:func:`run` drives a :class:`~dissect.pipeline.Pipeline` over captures with any consumers (report
writers, the summary builder, an in-memory collector) and row filters; :func:`analyze` is
:func:`run` with an in-memory collector, returning DataFrames.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import CaptureError
from .flows import Limits
from .pipeline import Consumer, Pipeline, Stats
from .reader import CaptureReader
from .summary import SummaryBuilder
from .writers import Blocks, MemoryCollector

if TYPE_CHECKING:
    from .tables import Analysis

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz", ".dmp")


@dataclass
class Filters:
    """Filters shared by every command (``--port``, ``--host``, ``--session``, ``--namespace``).

    Port and host filters select flows as they are created (other traffic costs almost nothing);
    session and namespace filters select rows on their way to the consumers.
    """

    ports: frozenset[int] = frozenset()
    hosts: frozenset[bytes] = frozenset()
    sessions: frozenset[int] = frozenset()
    namespaces: frozenset[str] = frozenset()

    @classmethod
    def make(cls, port: Iterable[int] | int | None = None, host: Iterable[str] | str | None = None,
             session: Iterable[int] | int | None = None,
             namespace: Iterable[str] | str | None = None) -> Filters:
        def many(x: Any) -> list[Any]:
            if x is None:
                return []
            if isinstance(x, (str, int)):
                return [x]
            return list(x)

        hosts = set()
        for h in many(host):
            try:
                hosts.add(ipaddress.ip_address(h).packed)
            except ValueError:
                raise ValueError(f"--host {h!r} is not an IP address") from None
        return cls(frozenset(int(p) for p in many(port)), frozenset(hosts),
                   frozenset(int(s) for s in many(session)), frozenset(many(namespace)))

    def flow_filter(self) -> Callable[[bytes, int, bytes, int], bool] | None:
        if not self.ports and not self.hosts:
            return None
        ports, hosts = self.ports, self.hosts

        def accept(cip: bytes, cport: int, sip: bytes, sport: int) -> bool:
            if ports and cport not in ports and sport not in ports:
                return False
            return not hosts or cip in hosts or sip in hosts

        return accept

    def wrap(self, consumer: Consumer) -> Consumer:
        if not self.sessions and not self.namespaces:
            return consumer
        return _RowFilter(consumer, self.sessions, self.namespaces)


class _RowFilter:
    def __init__(self, inner: Consumer, sessions: frozenset[int], namespaces: frozenset[str]) -> None:
        self.inner = inner
        self.sessions = sessions
        self.namespaces = namespaces

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        if self.sessions:
            rows = [r for r in rows if r[0] in self.sessions]
        if self.namespaces and table == "sio_packets":
            rows = [r for r in rows if r.namespace in self.namespaces]  # type: ignore[attr-defined]
        if rows:
            self.inner.add(table, rows)


def expand_paths(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """Capture paths, with directories replaced by the captures in them (sorted by name, so
    rotated files come in order)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            found = sorted(
                os.path.join(p, name) for name in os.listdir(p)
                if name.lower().endswith(CAPTURE_SUFFIXES)
            )
            if not found:
                raise CaptureError(f"{p}: directory holds no capture files")
            out.extend(found)
        else:
            out.append(p)
    if not out:
        raise CaptureError("no capture given")
    return out


def capture_files(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """The capture files of ``paths`` (:func:`expand_paths`), each opened once first: an
    unreadable one stops the run (:class:`CaptureError`) before any output is written."""
    files = expand_paths(paths)
    for f in files:
        CaptureReader(f).close()
    return files


@dataclass
class RunResult:
    stats: Stats
    summary: dict[str, Any] = field(default_factory=dict)


def _progress_bar(paths: list[str], quiet: bool) -> Any:
    """A click progress bar over the bytes of all captures, only on an interactive terminal."""
    if quiet or not sys.stderr.isatty():
        return None
    import click

    total = 0
    for p in paths:
        try:
            total += os.path.getsize(p)
        except OSError:
            pass
    return click.progressbar(length=max(total, 1), label="dissecting", file=sys.stderr,
                             show_eta=True, show_percent=True)


def drive(pipe: Pipeline, files: Sequence[str], quiet: bool = True) -> None:
    """Run every file through ``pipe`` and finish it, with a progress bar over the files' bytes
    when stderr is a terminal (and not ``quiet``)."""
    bar = _progress_bar(list(files), quiet)
    done_before = 0
    current = 0

    def progress(pos: int) -> None:
        nonlocal current
        bar.update(done_before + pos - current)
        current = done_before + pos

    pipe.progress = progress if bar is not None else None
    try:
        if bar is not None:
            bar.__enter__()
        for path in files:
            reader = CaptureReader(path)
            pipe.run_reader(reader)
            done_before += reader.size
            current = done_before
        pipe.finish()
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def run(paths: str | Sequence[str], consumers: Sequence[Consumer], *, filters: Filters | None = None,
        limits: Limits | None = None, quiet: bool = True) -> RunResult:
    """Dissect ``paths`` and hand every row batch to ``consumers``; returns the summary too.

    Raises :class:`CaptureError` when a capture cannot be read at all; damage inside a readable
    capture is a warning in the summary.
    """
    files = capture_files(paths)
    filters = filters or Filters()
    summary = SummaryBuilder()
    wrapped = [filters.wrap(c) for c in consumers] + [filters.wrap(summary)]
    pipe = Pipeline(wrapped, limits, filters.flow_filter())
    drive(pipe, files, quiet)
    st = pipe.stats
    return RunResult(st, run_summary(summary, st.files, st.warnings, st.warning_details, st.counters,
                                     st.nanosecond))


def run_summary(builder: SummaryBuilder, files: list[dict[str, Any]], warnings: Mapping[str, int],
             details: list[tuple[str, str]], counters: Mapping[str, int], nanosecond: bool) -> dict[str, Any]:
    """summary.json: the rows' figures plus what the readers and decoders counted."""
    for info in files:
        builder.add_file(info["path"], info["packets"], info["bytes"], info["link_types"])
    for kind, n in warnings.items():
        builder.add_warning(kind, n)
    for kind, detail in details:
        builder.add_warning(kind, 0, detail)
    result = builder.result()
    # Files in the order they were read (rows may have named them first, in any order).
    order = {info["path"]: i for i, info in enumerate(files)}
    result["files"] = sorted(result.get("files", []), key=lambda f: order.get(f.get("path"), len(order)))
    result["decode"] = dict(sorted(counters.items()))
    result["ts_precision"] = "ns" if nanosecond else "us"
    return result


def run_parallel(paths: str | Sequence[str], jobs: int, *, out_dir: str | None = None, fmt: str = "csv",
                 digits: int = 6, filters: Filters | None = None, limits: Limits | None = None,
                 quiet: bool = True, blocks: dict[str, Blocks] | None = None,
                 ) -> tuple[dict[str, Any], dict[str, list[tuple]] | None]:
    """:func:`run` over ``jobs`` processes (:mod:`dissect.parallel`): with ``out_dir`` the tables are
    written there, else their rows are returned. Returns (summary, rows); ``blocks`` (a dict)
    receives where the written tables' blocks of rows are (see ``ReportWriter.blocks``)."""
    from .parallel import run_jobs

    files = capture_files(paths)
    builder, first, rows = run_jobs(files, jobs, out_dir=out_dir, fmt=fmt, digits=digits, limits=limits,
                                    filters=filters or Filters(), quiet=quiet, blocks=blocks)
    return run_summary(builder, first.files, first.warnings, first.warning_details, first.counters,
                       first.nanosecond), rows


def run_dask(paths: str | Sequence[str], address: Any, *, filters: Filters | None = None,
             limits: Limits | None = None) -> tuple[dict[str, Any], dict[str, list[tuple]]]:
    """:func:`run` with one task per file on a Dask cluster (:mod:`dissect.cluster`).
    Returns (summary, rows by table)."""
    from .cluster import run_on_dask

    files = capture_files(paths)
    rows, builder, st = run_on_dask(files, address, limits=limits, filters=filters or Filters())
    return run_summary(builder, st["files"], st["warnings"], st["details"], st["counters"], st["nanosecond"]), rows


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
            limits: Limits | None = None, quiet: bool = True, jobs: int = 1, dask: Any = None) -> Analysis:
    """Dissect one or more captures (files or directories) into DataFrames.

    Returns an :class:`~dissect.tables.Analysis` whose attributes ``sessions``, ``handshakes``,
    ``http``, ``ws_frames``, ``ws_messages`` and ``sio_packets`` are the tables of
    ``shared/REPORTS.md`` and ``summary`` is the dict of ``summary.json``. ``jobs`` > 1 spreads
    the work over that many processes (the same rows); ``dask`` (a scheduler address or a
    ``distributed.Client``) runs one task per file on a Dask cluster.
    """
    from .tables import Analysis  # pandas: imported only where DataFrames are made

    filters = Filters.make(port, host, session, namespace)
    if dask is not None:
        summary, rows = run_dask(expand_paths(paths), dask, filters=filters, limits=limits)
        a = Analysis.from_rows(rows, summary)
    elif jobs > 1:
        summary, maybe_rows = run_parallel(expand_paths(paths), jobs, filters=filters, limits=limits)
        a = Analysis.from_rows(maybe_rows or {}, summary)
    else:
        collector = MemoryCollector()
        res = run(expand_paths(paths), [collector], filters=filters, limits=limits, quiet=quiet)
        a = Analysis.from_rows(collector.rows, res.summary)
    for name, keys in _SORT_KEYS.items():
        df = a.table(name)
        if len(df):
            setattr(a, name, df.sort_values(keys, kind="stable").reset_index(drop=True))
    return a
