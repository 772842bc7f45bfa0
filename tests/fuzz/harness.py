"""Run dissect in-process on one capture the way its commands do, and check what it produced.

Outcomes: ``ok`` (analysed, with whatever warnings and anomalies), ``rejected`` (a
:class:`dissect.errors.CaptureError`: the right answer for a file that is no capture at all),
``crash`` (any other exception, or a broken output contract), ``hang`` (over the time limit) and
``memory`` (peak RSS over the limit, or a MemoryError).

Per-case limits are enforced inside the worker process: ``setitimer(ITIMER_REAL)`` raises
:class:`CaseTimeout` in the running Python code, and the peak RSS of the case is read from
``/proc/self/status`` (VmHWM) after resetting it through ``/proc/self/clear_refs`` (Linux >= 4.0).
The driver (:mod:`tests.fuzz.mutate`) also kills a worker stuck in C code past a hard limit.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import resource
import signal
import time
import traceback
from dataclasses import dataclass
from types import FrameType

from dissect.api import run
from dissect.errors import CaptureError
from dissect.output.writers import MemoryCollector, ReportWriter
from dissect.records import TABLES

OK, REJECTED, CRASH, HANG, MEMORY = "ok", "rejected", "crash", "hang", "memory"
BAD = (CRASH, HANG, MEMORY)


class CaseTimeout(BaseException):
    """Raised by SIGALRM inside a case (a BaseException so dissect's handlers cannot eat it)."""


class ContractError(AssertionError):
    """The output broke the report contract (rows of the wrong arity, unparseable CSV, ...)."""


@dataclass
class CaseResult:
    status: str
    seconds: float
    rss_kb: int  # peak RSS of the worker during the case
    error: str = ""  # traceback of a crash / hang
    signature: str = ""  # exception type and innermost dissect frame, for de-duplication


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise CaseTimeout("per-case time limit")


def install_alarm() -> None:
    signal.signal(signal.SIGALRM, _on_alarm)


_CAN_RESET_PEAK = os.path.exists("/proc/self/clear_refs")


def reset_peak_rss() -> None:
    global _CAN_RESET_PEAK
    if not _CAN_RESET_PEAK:
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        _CAN_RESET_PEAK = False


def peak_rss_kb() -> int:
    """Peak RSS since the last reset (VmHWM), or the process's lifetime peak without /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def signature(exc: BaseException) -> str:
    """``Type@file:line`` of the innermost frame inside the dissect package (else the last one)."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = tb[-1] if tb else None
    for fr in reversed(tb):
        if f"{os.sep}dissect{os.sep}" in fr.filename:
            where = fr
            break
    loc = f"{os.path.relpath(where.filename)}:{where.lineno}:{where.name}" if where else "?"
    msg = re.sub(r"[0-9]+", "N", str(exc).split("\n", 1)[0])[:60]
    return f"{type(exc).__name__}@{loc} {msg}".rstrip()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def check_outputs(collector: MemoryCollector, out_dir: str, fmt: str, summary: dict[str, object]) -> None:
    """Contract checks that hold for any input (shared/REPORTS.md)."""
    for table, rows in collector.rows.items():
        width = len(TABLES[table]._fields)  # type: ignore[attr-defined]
        for r in rows:
            if len(r) != width:
                raise ContractError(f"{table}: row of {len(r)} fields, expected {width}: {r!r}"[:500])
    ids = [r[0] for r in collector.rows["sessions"]]
    if len(ids) != len(set(ids)):
        raise ContractError("sessions: session_id not unique")
    json.dumps(summary)  # summary.json must be writable
    for table in TABLES:
        path = os.path.join(out_dir, f"{table}.{fmt}")
        with open(path, encoding="utf-8", newline="") as f:
            if fmt == "csv":
                rows = list(csv.reader(f))
                width = len(rows[0])
                n = len(rows) - 1
                for i, row in enumerate(rows[1:], 1):
                    if len(row) != width:
                        raise ContractError(f"{table}.csv line {i}: {len(row)} cells, header has {width}")
                    for cell in row:
                        if cell[:1] in _FORMULA_START and not _is_number(cell):
                            raise ContractError(f"{table}.csv line {i}: formula cell {cell[:40]!r}")
            else:
                n = 0
                for line in f:
                    json.loads(line)
                    n += 1
        if n != len(collector.rows[table]):
            raise ContractError(f"{table}.{fmt}: {n} rows written, {len(collector.rows[table])} produced")


def dissect_file(path: str, out_dir: str, fmt: str = "csv", tables: bool = False, html: bool = False) -> None:
    """What ``dissect report`` does (without the CLI), plus the contract checks.

    ``tables``: also build the DataFrames (:func:`dissect.analyze`) and the terminal summary;
    ``html``: also render report.html from the written tables.
    """
    collector = MemoryCollector()
    writer = ReportWriter(out_dir, fmt)
    try:
        result = run(path, [collector, writer])
    finally:
        writer.close()
    check_outputs(collector, out_dir, fmt, result.summary)
    if tables or html:
        from dissect.output.tables import Analysis
        from dissect.report.terminal import print_summary

        analysis = Analysis.from_rows(collector.rows, result.summary)
        print_summary(analysis.summary, file=io.StringIO())
        if html and fmt == "csv":
            from dissect.report.html import render_html

            render_html(Analysis.from_dir(out_dir), os.path.join(out_dir, "report.html"))


def run_case(path: str, out_dir: str, time_limit: float, rss_limit_kb: int, fmt: str = "csv",
             tables: bool = False, html: bool = False) -> CaseResult:
    """One case under the time and memory limits (call :func:`install_alarm` once first)."""
    reset_peak_rss()
    t0 = time.perf_counter()
    try:
        status, error, sig = _guarded(path, out_dir, time_limit, fmt, tables, html)
    except CaseTimeout:  # the alarm went off just as the case ended: still over the limit
        status, error, sig = HANG, f"time limit {time_limit} s reached at the end of the case", "timeout@end"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.perf_counter() - t0
    rss = peak_rss_kb()
    if status == OK and rss > rss_limit_kb:
        status, error, sig = MEMORY, f"peak RSS {rss} kB over the limit {rss_limit_kb} kB", "rss-limit"
    return CaseResult(status, elapsed, rss, error, sig)


def _guarded(path: str, out_dir: str, time_limit: float, fmt: str, tables: bool,
             html: bool) -> tuple[str, str, str]:
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, time_limit)
            dissect_file(path, out_dir, fmt, tables, html)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except CaptureError:
        return REJECTED, "", ""
    except CaseTimeout as e:
        return HANG, traceback.format_exc(), "timeout@" + signature(e).split("@", 1)[1].split(" ", 1)[0]
    except MemoryError as e:
        return MEMORY, traceback.format_exc(), signature(e)
    except Exception as e:  # noqa: BLE001 - everything else is the finding
        return CRASH, traceback.format_exc(), signature(e)
    return OK, "", ""
