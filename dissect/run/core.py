"""The run core: which files, one pipeline driven over them, and one result shape.

Every way of running an analysis uses :func:`dissect_files`: one process (:mod:`.local`), the
dissecting side of ``--jobs 2`` (:mod:`.two_stage`), each worker of ``--jobs N`` (:mod:`.jobs`) and
each task of ``--dask`` (:mod:`.dask`). Each returns a :class:`RunResult`; results of workers or
tasks merge into one, and :attr:`RunResult.summary` is summary.json made from it.
"""

from __future__ import annotations

import functools
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dissect.capture.reader import CaptureReader
from dissect.errors import CaptureError
from dissect.output.broadcasts import FanoutRows
from dissect.output.summary import SummaryBuilder
from dissect.pipeline import Consumer, Pipeline
from dissect.protocols.tls import KeyLog
from dissect.run.filters import Filters
from dissect.transport.limits import Limits
from dissect.transport.ownership import Ownership

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz", ".dmp")

Paths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def expand_paths(paths: Paths) -> list[str]:
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


def capture_files(paths: Paths) -> list[str]:
    """The capture files of ``paths`` (:func:`expand_paths`), each opened once first: an
    unreadable one stops the run (:class:`CaptureError`) before any output is written."""
    files = expand_paths(paths)
    for f in files:
        CaptureReader(f).close()
    return files


def readable_files(paths: Paths) -> tuple[list[str], list[tuple[str, str]]]:
    """The capture files of ``paths`` (:func:`expand_paths`) that can be read, and the others as
    ``(path, why)``, for runs that analyse what they can (``dissect report`` and ``summary`` name
    the skipped files and exit 2 at the end; summary.json lists them in ``skipped_files``)."""
    readable: list[str] = []
    skipped: list[tuple[str, str]] = []
    for f in expand_paths(paths):
        try:
            CaptureReader(f).close()
        except CaptureError as e:
            why = str(e)
            skipped.append((f, why[len(f) + 2:] if why.startswith(f"{f}: ") else why))
        else:
            readable.append(f)
    return readable, skipped


def load_keylog(path: str | os.PathLike[str] | None) -> KeyLog | None:
    """The TLS key log file at ``path`` (NSS format: SSLKEYLOGFILE, node --tls-keylog, ...);
    :class:`CaptureError` when it cannot be read or holds no secret."""
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise CaptureError(f"{os.fspath(path)}: cannot read the TLS key log: {e.strerror or e}") from None
    keylog = KeyLog.from_text(text)
    if not len(keylog):
        raise CaptureError(f"{os.fspath(path)}: no TLS secret in this key log (NSS key log lines such as "
                           "'CLIENT_RANDOM <hex> <hex>' were expected)")
    return keylog


@dataclass
class RunResult:
    """What a run counted besides its rows (one process's, one worker's or one task's share).

    ``decode`` is what reading and decoding counted (every ``--jobs`` worker reads every packet,
    so it is the same in each); ``protocol`` is what the dissectors counted (each worker for the
    flows it owns: summed).
    """

    builder: SummaryBuilder = field(default_factory=SummaryBuilder)
    files: list[dict[str, Any]] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)
    warning_details: list[tuple[str, str]] = field(default_factory=list)
    decode: Counter[str] = field(default_factory=Counter)
    protocol: Counter[str] = field(default_factory=Counter)
    nanosecond: bool = False
    sessions: int = 0  # session ids handed out
    skipped: list[tuple[str, str]] = field(default_factory=list)  # unreadable files: (path, why)
    row_order: str = ""  # "sessions": the tables' rows are grouped by session_id (docs/REPORTS.md, Row order)

    def merge_worker(self, other: RunResult) -> None:
        """Add a ``--jobs`` worker's share: the same files were read, other flows dissected."""
        self.builder.merge(other.builder)
        self.protocol.update(other.protocol)

    def merge_task(self, other: RunResult, counters: Sequence[str] = ()) -> None:
        """Add a ``--dask`` task's share: other flows dissected, some files read again (of what
        reading counted, only ``counters``, counted for dissected flows, are added)."""
        self.merge_worker(other)
        for name in counters:
            if other.decode.get(name):
                self.decode[name] += other.decode[name]

    @classmethod
    def concluded(cls, summary: dict[str, Any]) -> RunResult:
        """The result of a run whose summary.json was made elsewhere (``--dask``: on a worker, where
        the tasks' summary builders meet)."""
        result = cls()
        result.__dict__["summary"] = summary  # the cached_property's value
        return result

    def broadcasts(self) -> FanoutRows:
        """The ``sio_broadcasts`` rows, made from every worker's Socket.IO events once the run is
        complete (:mod:`dissect.output.broadcasts`)."""
        return self.builder.broadcasts()

    @functools.cached_property
    def summary(self) -> dict[str, Any]:
        """summary.json: the rows' figures plus what the readers, decoders and dissectors counted
        (made once, when the run is complete)."""
        builder = self.builder
        builder.broadcasts()
        for info in self.files:
            builder.add_file(info["path"], info["packets"], info["bytes"], info["link_types"])
        for kind, n in self.warnings.items():
            builder.add_warning(kind, n)
        for kind, detail in self.warning_details:
            builder.add_warning(kind, 0, detail)
        result = builder.result()
        # Files in the order they were read (rows may have named them first, in any order).
        order = {info["path"]: i for i, info in enumerate(self.files)}
        result["files"] = sorted(result.get("files", []), key=lambda f: order.get(f.get("path"), len(order)))
        # A gzip-compressed capture: "bytes" is its size on disk, "uncompressed_bytes" the capture's.
        unpacked = {info["path"]: info["uncompressed_bytes"] for info in self.files if "uncompressed_bytes" in info}
        for f in result["files"]:
            if f.get("path") in unpacked:
                f["uncompressed_bytes"] = unpacked[f["path"]]
        result["decode"] = dict(sorted((self.decode + self.protocol).items()))
        result["ts_precision"] = "ns" if self.nanosecond else "us"
        if self.skipped:  # only when a file was skipped: the key is absent from a complete run
            result["skipped_files"] = [{"path": p, "reason": why} for p, why in self.skipped]
        if self.row_order:  # only when not one process's order
            result["row_order"] = self.row_order
        return result


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


class FlowPlan(Protocol):
    """How a task of a split run (``--dask``, :mod:`dissect.run.split`) dissects some flows of its
    files: it sets up the pipeline's flow table, and acts before the pipeline finishes."""

    def install(self, pipe: Pipeline) -> None: ...

    def before_finish(self, pipe: Pipeline) -> None: ...


def drive(pipe: Pipeline, files: Sequence[str], quiet: bool = True, plan: FlowPlan | None = None) -> None:
    """Run every file through ``pipe`` and finish it, with a progress bar over the files' bytes
    when stderr is a terminal (and not ``quiet``); ``plan`` acts before the end."""
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
            if reader.compressed and pipe.stats.files:  # the entry run_reader just added
                pipe.stats.files[-1]["uncompressed_bytes"] = reader.bytes_read
            done_before += reader.size
            current = done_before
        if plan is not None:
            plan.before_finish(pipe)
        pipe.finish()
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def dissect_files(files: Sequence[str], consumers: Sequence[Consumer], *, filters: Filters | None = None,
                  limits: Limits | None = None, quiet: bool = True, ownership: Ownership | None = None,
                  summary: bool = True, keylog: KeyLog | None = None, plan: FlowPlan | None = None) -> RunResult:
    """Dissect ``files`` (already checked by :func:`capture_files`) and hand every row batch,
    filtered, to ``consumers``; ``keylog`` holds the TLS secrets given (a fresh copy is used, so
    the secrets a capture carries stay with this run). With ``summary``, the result's summary
    ``builder`` sees the rows too (``--jobs 2`` builds it in the writing process instead).
    ``ownership`` (a ``--jobs`` worker) or ``plan`` (a ``--dask`` task) dissect only some flows."""
    filters = filters or Filters()
    result = RunResult()
    wrapped = [filters.wrap(c) for c in consumers]
    if summary:
        wrapped.append(filters.wrap(result.builder))
    pipe = Pipeline(wrapped, limits, filters.flow_filter(), ownership=ownership,
                    keylog=keylog.copy() if keylog is not None else None)
    if plan is not None:
        plan.install(pipe)
    drive(pipe, files, quiet, plan)
    st = pipe.stats
    result.files = st.files
    result.warnings = st.warnings
    result.warning_details = st.warning_details
    result.decode = st.counters
    result.protocol = st.protocol
    result.nanosecond = st.nanosecond
    result.sessions = pipe.flows.next_id - 1
    return result
