"""The ``dissect`` command line.

Exit codes: 0 done; 1 a check or diff rule failed; 2 unusable input (an unreadable capture, bad
rules, bad options), with one line on stderr saying why. A capture that is damaged but readable is
analysed as far as it goes, with a warning line, and exits 0.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import click

from dissect import __version__, fastpaths
from dissect.capture.reader import CaptureReader
from dissect.cli.options import dask_option, filter_options, make_filters
from dissect.errors import CaptureWarning, DissectError
from dissect.output.report_dir import ReportDir
from dissect.output.writers import Blocks, ParquetWriter, ReportWriter
from dissect.protocols.tls import KeyLog
from dissect.run.core import RunResult, load_keylog, readable_files
from dissect.run.filters import Filters
from dissect.run.local import run
from dissect.transport.limits import Limits

F = TypeVar("F", bound=Callable[..., Any])


def limit_options(f: F) -> F:
    d = Limits()
    f = click.option("--max-message-bytes", type=int, default=d.max_message_bytes, show_default=True,
                     help="Largest WebSocket message kept (reassembled or decompressed).")(f)
    f = click.option("--max-reassembly-bytes", type=int, default=d.max_reassembly_bytes, show_default=True,
                     help="Out-of-order bytes held per TCP direction before a hole is declared lost.")(f)
    f = click.option("--max-flows", type=int, default=d.max_flows, show_default=True,
                     help="Open flows kept; past it the longest-idle are flushed.")(f)
    f = click.option("--max-half-open", type=int, default=d.max_half_open, show_default=True,
                     help="TCP flows with a SYN and no answer kept (a SYN flood, a scan); past it the oldest "
                          "are written out early, each still a sessions row.")(f)
    return f


def _writer(out_dir: str, fmt: str, digits: int, blocks: bool) -> ReportWriter | ParquetWriter:
    """The tables' writer; ``blocks``: record where its blocks of rows go (for report.html)."""
    return ParquetWriter(out_dir) if fmt == "parquet" else ReportWriter(out_dir, fmt, digits, blocks)


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def default_jobs() -> int:
    """``report`` without --jobs: one process with the compiled core (handing its rows to a writing
    process costs about what the writing does: measured slower than one process); in pure Python,
    two processes (dissect, write) when the machine has two cores or more and can fork; else one."""
    if fastpaths.COMPILED:
        return 1
    return 2 if (os.cpu_count() or 1) >= 2 and _can_fork() else 1


def two_stages(jobs: int) -> bool:
    """Whether ``--jobs`` means one process dissecting and one writing (:mod:`dissect.run.two_stage`):
    ``--jobs 2`` in pure Python. With the compiled core the writing costs less than handing rows
    over, and two workers sharing the sessions (:mod:`dissect.run.jobs`) are faster (measured:
    README, Performance)."""
    return jobs == 2 and not fastpaths.COMPILED


def any_nanosecond(files: list[str]) -> bool:
    """Whether any capture has sub-microsecond timestamps: then every CSV time gets 9 digits."""
    fine = False
    for f in files:
        r = CaptureReader(f)
        fine = fine or r.nanosecond
        r.close()
    return fine


def fail(message: str) -> None:
    click.echo(f"dissect: {message}", err=True)
    sys.exit(2)


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def guarded(f: F) -> F:
    """Turn dissect's own errors into one line on stderr and exit 2 (never a traceback)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # SIGTERM (kill, a CI job's timeout) ends the run as Ctrl-C does: the partial report is
        # removed and the earlier one left whole
        with contextlib.suppress(ValueError):  # not the main thread (tests call commands in threads)
            signal.signal(signal.SIGTERM, _terminated)
        try:
            return f(*args, **kwargs)
        except DissectError as e:
            fail(str(e))
        except KeyboardInterrupt:
            click.echo("dissect: interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def warn_lines(summary: dict[str, Any], quiet: bool) -> None:
    """One line per reader warning (a damaged capture still exits 0)."""
    if quiet:
        return
    warnings = summary.get("warnings") or {}
    items = warnings.get("by_kind", warnings) if isinstance(warnings, dict) else {}
    for kind, info in items.items():
        count = info.get("count") if isinstance(info, dict) else info
        if not count:
            continue
        details = info.get("details", []) if isinstance(info, dict) else []
        extra = f": {details[0]}" if details else ""
        click.echo(f"dissect: warning: {kind} ({count}){extra}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dissect",
                      message=f"%(prog)s, version %(version)s ({fastpaths.implementation()})")
def main() -> None:
    """Dissect captures (pcap, pcapng, gzip) into TCP sessions, HTTP exchanges, WebSocket frames
    and messages, and Engine.IO / Socket.IO packets, with the handshake chain of every session."""
    # The commands say what was wrong with a capture in their own words (warning lines, summary.json,
    # crosscheck's result), not as the Python API's CaptureWarning.
    warnings.simplefilter("ignore", CaptureWarning)


@main.command()
@click.argument("captures", nargs=-1, required=True)
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(),
              help="Directory for the tables, summary.json and report.html: new, empty, or an earlier "
                   "report's (replaced whole).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default="csv",
              show_default=True, help="Table files: CSV, JSON lines, or Parquet (needs pyarrow).")
@click.option("--html/--no-html", default=True, show_default=True, help="Also write report.html.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no warning lines.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None,
              help="Processes. 1: one (the default with the compiled core, or on one core). 2 in pure Python "
                   "(its default with two cores or more): one dissects, one writes the tables; the files are "
                   "those of one process, byte for byte. 2 with the compiled core, and 3 or more: workers "
                   "sharing the sessions (the same rows, grouped by session_id: summary.json row_order).")
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Run the analysis as tasks on the Dask cluster at ADDRESS (needs the dask extra): each file is "
                   "indexed, then tasks dissect the flows of the files they span (the rows of a local run, grouped "
                   "by session). Tasks write part files into --out (which the workers must reach) or --dask-scratch.")
@click.option("--dask-scratch", "dask_scratch", metavar="DIR|URL",
              help="With --dask: where the tasks write their part files (a directory or an fsspec URL such as "
                   "s3://bucket/tmp that the workers and this machine reach); default: inside --out.")
@filter_options
@limit_options
@guarded
def report(captures: tuple[str, ...], out_dir: str, fmt: str, html: bool, quiet: bool, jobs: int | None,
           dask_address: str | None, dask_scratch: str | None,
           port: tuple[int, ...], host: tuple[str, ...], session_ids: tuple[int, ...],
           namespace: tuple[str, ...], since: str | None, until: str | None, event: tuple[str, ...],
           tls_keylog: str | None, payloads: bool, max_flows: int, max_half_open: int,
           max_reassembly_bytes: int, max_message_bytes: int) -> None:
    """Write every table of CAPTURES (files or directories) to --out DIR.

    DIR holds one report: it is created if missing; an earlier dissect report in it is replaced
    (its files the new report does not write are removed); a non-empty directory that holds no
    dissect report is refused. The report is written aside (DIR/.dissect-new-*) and moved into
    place when complete, so a failed run leaves the earlier report whole."""
    filters = make_filters(port, host, session_ids, namespace, since, until, event)
    keylog = load_keylog(tls_keylog)
    limits = Limits(max_flows=max_flows, max_half_open=max_half_open, max_reassembly_bytes=max_reassembly_bytes,
                    max_message_bytes=max_message_bytes, payloads=payloads)
    files, skipped = readable_captures(captures)
    digits = 9 if any_nanosecond(files) else 6
    if jobs is None:
        jobs = default_jobs()
    elif jobs > 1 and not _can_fork():
        raise click.UsageError("--jobs above 1 needs the fork start method (Linux, macOS): use --jobs 1")
    if dask_scratch and not dask_address:
        raise click.UsageError("--dask-scratch goes with --dask")
    place = ReportDir(out_dir)
    with place as work:
        try:
            result, counts, blocks = _write_tables(work, files, skipped, fmt, digits, html, quiet, jobs,
                                                   (dask_address, dask_scratch), filters, limits, keylog)
            summary = result.summary
            with open(os.path.join(work, "summary.json"), "w", encoding="utf-8") as f:
                json.dump(summary, f, indent=2, sort_keys=False)
                f.write("\n")
            if html:
                _write_html(work, blocks, quiet)
        except OSError as e:
            raise DissectError(f"--out {out_dir}: cannot write the report ({e.strerror or e})") from None
        place.commit()
    warn_lines(summary, quiet)
    if not quiet:
        listed = ", ".join(f"{counts.get(t, 0)} {t}" for t in ReportWriter.TABLES)
        click.echo(f"dissect: wrote {out_dir}: {listed}", err=True)
    finish(summary, filters, quiet, skipped)


def _write_tables(work: str, files: list[str], skipped: list[tuple[str, str]], fmt: str, digits: int,
                  html: bool, quiet: bool, jobs: int,
                  dask: tuple[str | None, str | None], filters: Filters, limits: Limits, keylog: KeyLog | None,
                  ) -> tuple[RunResult, dict[str, int], dict[str, Blocks]]:
    """Dissect ``files`` and write their tables into ``work`` the way ``--jobs``/``--dask`` say;
    the run's result (naming the ``skipped`` files), the row counts and (for report.html) where
    the blocks of rows are."""
    # Where each table's blocks of rows were written: report.html reads back a sample of them.
    blocks: dict[str, Blocks] = {}
    dask_address, dask_scratch = dask
    if dask_address:
        from dissect.run.dask import run_dask

        result, _ = run_dask(files, dask_address, out_dir=work, fmt=fmt, digits=digits, filters=filters,
                             limits=limits, keylog=keylog, quiet=quiet, blocks=blocks if html else None,
                             parts=dask_scratch, skipped=skipped)
        result.skipped = skipped
        return result, result.summary.get("totals", {}), blocks
    if two_stages(jobs):
        from dissect.run.two_stage import run_two_stages

        result, counts, blocks = run_two_stages(files, functools.partial(_writer, work, fmt, digits, html),
                                                filters=filters, limits=limits, quiet=quiet, keylog=keylog)
        result.skipped = skipped
        return result, counts, blocks
    if jobs >= 2:
        from dissect.run.jobs import run_jobs

        result, _ = run_jobs(files, jobs, out_dir=work, fmt=fmt, digits=digits, filters=filters,
                             limits=limits, quiet=quiet, blocks=blocks if html else None, keylog=keylog)
        result.skipped = skipped
        return result, result.summary.get("totals", {}), blocks
    writer = _writer(work, fmt, digits, html)
    try:
        result = run(files, [writer], filters=filters, limits=limits, quiet=quiet, keylog=keylog)
        for chunk in result.broadcasts().chunks():  # made from every row, at the end
            writer.add("sio_broadcasts", chunk)
    finally:
        writer.close()
    result.skipped = skipped
    return result, writer.counts, getattr(writer, "blocks", {})


def readable_captures(captures: tuple[str, ...]) -> tuple[list[str], list[tuple[str, str]]]:
    """The readable capture files of CAPTURES and the unreadable ones, ``(path, why)``: the
    others are analysed, and :func:`finish` names the skipped ones and exits 2. When none can
    be read: each named, and :class:`DissectError` for the last."""
    files, skipped = readable_files(list(captures))
    if not files:
        for path, why in skipped[:-1]:
            click.echo(f"dissect: {path}: {why}", err=True)
        path, why = skipped[-1]
        raise DissectError(f"{path}: {why}")
    return files, skipped


def finish(summary: dict[str, Any], filters: Filters, quiet: bool, skipped: list[tuple[str, str]]) -> None:
    """The last lines of a run: what the filters left (unless ``quiet``), the skipped files (then
    exit 2: the analysis is not that of every capture given)."""
    if filters.active and not quiet:
        totals = summary.get("totals") or {}
        if not totals.get("sessions"):
            click.echo("dissect: no flow matched the filters", err=True)
        elif filters.namespaces and not totals.get("sio_packets"):
            click.echo("dissect: no Socket.IO packet matched --namespace", err=True)
    for path, why in skipped:
        click.echo(f"dissect: {path}: {why} (skipped; the other captures were analysed)", err=True)
    if skipped:
        sys.exit(2)


# report.html is drawn from at most this many rows per table (beyond, every k-th block of rows
# as the writer recorded them; its plot over time still counts every row), so writing it stays
# within dissect's memory bound however large the capture.
HTML_ROWS_PER_TABLE = 10_000


def _write_html(out_dir: str, blocks: dict[str, Blocks], quiet: bool) -> None:
    from dissect.output.tables import Analysis
    from dissect.report.html import render_html

    analysis = Analysis.from_dir(out_dir, max_rows=HTML_ROWS_PER_TABLE, blocks=blocks)
    if analysis.sampled and not quiet:
        click.echo("dissect: report.html drawn from a sample of the rows (totals from summary.json)", err=True)
    render_html(analysis, os.path.join(out_dir, "report.html"))


@main.command()
@click.argument("captures", nargs=-1, required=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no warning lines.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead.")
@click.option("--sessions", "list_sessions", is_flag=True,
              help="Also list the sessions, one line each: id, endpoints, app protocol, TLS version, "
                   "duration, HTTP exchanges, WebSocket messages, Socket.IO packets, anomalies, close, "
                   "handshake times (! failed, ? capture ended first).")
@dask_option("only the tasks' counters and summary builders (and, with --sessions, their lines) come back; "
             "no part file is written, so there is no --dask-scratch.")
@filter_options
@guarded
def summary(captures: tuple[str, ...], quiet: bool, as_json: bool, list_sessions: bool, dask_address: str | None,
            port: tuple[int, ...], host: tuple[str, ...], session_ids: tuple[int, ...],
            namespace: tuple[str, ...], since: str | None, until: str | None, event: tuple[str, ...],
            tls_keylog: str | None, payloads: bool) -> None:
    """Print the headline figures of CAPTURES in the terminal."""
    if as_json and list_sessions:
        raise click.UsageError("--sessions prints a list, --json prints summary.json: give one of them "
                               "(the sessions table of dissect report holds every session's figures)")
    filters = make_filters(port, host, session_ids, namespace, since, until, event)
    keylog = load_keylog(tls_keylog)
    files, skipped = readable_captures(captures)
    from dissect.report.sessions_list import SessionList, print_sessions

    listing = SessionList() if list_sessions else None
    if dask_address:
        from dissect.run.dask import run_dask

        def merge_lines(task_listing: SessionList) -> None:
            assert listing is not None
            listing.lines.update(task_listing.lines)  # each session is one task's

        result, _ = run_dask(files, dask_address, filters=filters, limits=Limits(payloads=payloads), keylog=keylog,
                             quiet=quiet, rows=False, consumer=SessionList if listing is not None else None,
                             on_consumer=merge_lines)
    else:
        result = run(files, [listing] if listing is not None else [], filters=filters, quiet=quiet, keylog=keylog,
                     limits=Limits(payloads=payloads))
    result.skipped = skipped
    if as_json:
        click.echo(json.dumps(result.summary, indent=2))
    else:
        from dissect.report.terminal import print_summary

        print_summary(result.summary)
    if listing is not None:
        print_sessions(listing.lines.values(), sys.stdout)
    warn_lines(result.summary, quiet)
    finish(result.summary, filters, quiet, skipped)


from dissect.cli.check import check  # noqa: E402 - commands defined in their own modules
from dissect.cli.crosscheck import crosscheck  # noqa: E402
from dissect.cli.diff import diff  # noqa: E402
from dissect.cli.follow import follow  # noqa: E402

main.add_command(check)
main.add_command(diff)
main.add_command(crosscheck)
main.add_command(follow)
