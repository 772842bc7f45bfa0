"""A report directory (``dissect report --out DIR``) holds one report.

A directory holds a *dissect report* when its ``summary.json`` is a JSON object with an integer
``schema`` and a ``totals`` object, and the files of the first release's six tables are there in
one format (``sessions.csv`` ... ``sio_packets.csv``, or ``.jsonl``, or ``.parquet``), so that a
report of an earlier dissect, without the tables added since, is recognised too. Those files, plus
``report.html``, are the report's files (:data:`REPORT_FILES`).

:class:`ReportDir` writes a new report so that a reused ``--out`` never mixes two reports:

- ``DIR`` missing: created (with its parents); an empty directory is fine too;
- ``DIR`` holding a dissect report: the new report replaces it, and files of the earlier report
  the new one does not write (``report.html`` after ``--no-html``, CSV tables after
  ``--format jsonl``) are removed; files that are no report file are left alone;
- ``DIR`` not empty and no dissect report, or not a directory: refused (:class:`DissectError`),
  nothing written.

The new report is written into a temporary directory, ``DIR/.dissect-new-HOST-PID-XXXX``, and its files are
moved into ``DIR`` (``os.replace``, each atomic) only once it is complete, so a run that fails or is
interrupted leaves the earlier report whole. The temporary directory is inside ``DIR`` rather than
beside it so that ``DIR`` itself is never renamed: it may be the current directory, a mount point
(a CI job's volume) or sit in a directory dissect cannot write to, and the moves never cross file
systems. A run killed outright (SIGKILL, a power cut) cannot remove its temporary directory; the
next report into ``DIR`` removes those of processes of this host that no longer run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from types import TracebackType

from dissect.errors import DissectError
from dissect.records import TABLES

TABLE_FORMATS = ("csv", "jsonl", "parquet")
#: Every file a dissect report may hold.
FIRST_TABLES = ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets")
REPORT_FILES = frozenset({f"{t}.{fmt}" for t in TABLES for fmt in TABLE_FORMATS} | {"summary.json", "report.html"})
#: Prefix of the temporary directory a report is written into before it is moved into place.
TMP_PREFIX = ".dissect-new-"


def is_report(directory: str) -> bool:
    """Whether ``directory`` holds a dissect report: a summary.json with an integer ``schema`` and
    a ``totals`` object, and the files of the first six tables in one of the formats."""
    try:
        with open(os.path.join(directory, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
        names = set(os.listdir(directory))
    except (OSError, ValueError):
        return False
    if not isinstance(summary, dict) or not isinstance(summary.get("schema"), int) \
            or not isinstance(summary.get("totals"), dict):
        return False
    # the tables of the first release: a report of an earlier dissect lacks the tables added since
    return any(all(f"{t}.{fmt}" in names for t in FIRST_TABLES) for fmt in TABLE_FORMATS)


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _host() -> str:
    return socket.gethostname().replace("-", "_") or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but another user's
        return True
    return True


def run_prefix(prefix: str = TMP_PREFIX) -> str:
    """The start of the name of a temporary directory of this run: ``prefix``, this host, this
    process (what :func:`remove_stale` reads back)."""
    return f"{prefix}{_host()}-{os.getpid()}-"


def temp_dir(prefix: str) -> str:
    """A new temporary directory of this run in the system's temporary directory, named by
    :func:`run_prefix`; those a run of this host killed outright left there (the same
    ``prefix``) are removed first."""
    remove_stale(tempfile.gettempdir(), prefix)
    return tempfile.mkdtemp(prefix=run_prefix(prefix))


def remove_stale(out: str, prefix: str = TMP_PREFIX) -> list[str]:
    """Remove the temporary directories named ``prefix``... that killed runs of this host left in
    ``out`` (their process no longer runs); returns their names. Those of other hosts (a shared
    file system) and of running processes are left alone."""
    removed = []
    host = _host()
    with contextlib.suppress(OSError):
        for name in os.listdir(out):
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix):].split("-")
            if len(parts) < 3 or parts[0] != host or not parts[1].isdigit():
                continue
            pid = int(parts[1])
            if pid != os.getpid() and not _alive(pid):
                shutil.rmtree(os.path.join(out, name), ignore_errors=True)
                removed.append(name)
    return removed


class ReportDir:
    """Where one report is written: ``with ReportDir(out) as work:`` write every file into
    ``work``, then :meth:`commit` moves them into ``out``. Leaving the block without committing
    (an error, Ctrl-C) removes ``work`` and leaves ``out`` as it was.

    Raises :class:`DissectError` (one line) when ``out`` cannot be used: not a directory, not
    empty and no dissect report, cannot be created or written.
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = os.fspath(out)
        self.work = ""
        self._created = False

    def __enter__(self) -> str:
        out = self.out
        if os.path.lexists(out) and not os.path.isdir(out):
            raise DissectError(f"--out {out}: exists and is not a directory")
        if os.path.isdir(out):
            try:
                names = [n for n in os.listdir(out) if not n.startswith(TMP_PREFIX)]
            except OSError as e:
                raise DissectError(f"--out {out}: cannot read the directory ({_why(e)})") from None
            if names and not is_report(out):
                raise DissectError(
                    f"--out {out}: directory is not empty and holds no dissect report (summary.json "
                    "and the tables); give a new or empty directory, or an earlier report's")
        else:
            try:
                os.makedirs(out)
            except OSError as e:
                raise DissectError(f"--out {out}: cannot create the directory ({_why(e)})") from None
            self._created = True
        remove_stale(out)
        try:
            self.work = tempfile.mkdtemp(prefix=run_prefix(), dir=out)
        except OSError as e:
            self._remove_created()
            raise DissectError(f"--out {out}: cannot write in the directory ({_why(e)})") from None
        return self.work

    def commit(self) -> None:
        """Move the new report's files into ``out`` and remove the earlier report's other files."""
        try:
            new = set(os.listdir(self.work))
            for name in sorted(new):
                os.replace(os.path.join(self.work, name), os.path.join(self.out, name))
            for name in sorted(REPORT_FILES - new):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.out, name))
            os.rmdir(self.work)
        except OSError as e:
            raise DissectError(f"--out {self.out}: cannot move the report into place ({_why(e)})") from None
        self.work = ""

    def _remove_created(self) -> None:
        if self._created:
            with contextlib.suppress(OSError):
                os.rmdir(self.out)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.work:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = ""
            self._remove_created()
