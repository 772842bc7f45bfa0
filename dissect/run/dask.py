"""``--dask ADDRESS``: the workers of ``--jobs N`` as tasks on a Dask cluster.

Each task is one worker of :mod:`dissect.run.jobs`: it reads every capture file in order (so a
connection, or an Engine.IO session of several connections, that runs on from one rotated file into
the next is followed as in one process, and session ids are those of a local run) and dissects the
flows it owns. Tasks write their tables as part files next to the report (the output directory must
be on storage every worker can write, e.g. a shared file system); the client only gathers each
task's counters and summary builder and joins the part files by streaming copies, so its memory does
not grow with the data. A task whose worker dies is retried by Dask; its part files are written aside
and renamed into place when complete, so a retried task leaves no duplicated or missing row.

The same rows as a local run; their order in the files is that of ``--jobs N`` (worker by worker,
each in packet order), not one process's: sort by session_id to compare. Every task reads every
packet, so the reading (not the dissecting) is repeated per task: splitting the flows per file
before reading (an index pass) is the step that remains for clusters much larger than the machine.

Dask is an optional extra: ``pip install 'wiredissect[dask]'``. The workers need ``wiredissect``
installed and the capture paths readable as given (absolute paths on shared storage, for workers on
other machines or in another directory).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from dissect.errors import DissectError
from dissect.output.writers import Blocks
from dissect.protocols.tls import KeyLog
from dissect.run.core import Paths, RunResult, capture_files
from dissect.run.filters import Filters
from dissect.run.jobs import Mapper, WorkerResult, run_jobs
from dissect.transport.limits import Limits

RETRIES = 2  # a task whose worker died is run again this many times


def _cluster_mapper(client: Any, quiet: bool) -> Mapper:
    """Runs the workers as Dask tasks; a progress line over tasks on a terminal."""
    from distributed import as_completed

    def mapper(fn: Any, args: list[Any]) -> list[WorkerResult]:
        args = [(*a[:8], True, *a[9:]) for a in args]  # (the tasks' own progress bars: off)
        futures = client.map(fn, args, pure=False, retries=RETRIES)
        show = not quiet and sys.stderr.isatty()
        for done, _ in enumerate(as_completed(futures), 1):
            if show:
                sys.stderr.write(f"\rdissect: {done}/{len(futures)} Dask tasks done")
                sys.stderr.flush()
        if show:
            sys.stderr.write("\n")
        return list(client.gather(futures))

    return mapper


def run_dask(paths: Paths, address: Any, *, out_dir: str | None = None, fmt: str = "csv", digits: int = 6,
             filters: Filters | None = None, limits: Limits | None = None, keylog: KeyLog | None = None,
             quiet: bool = True, blocks: dict[str, Blocks] | None = None, tasks: int | None = None,
             ) -> tuple[RunResult, dict[str, list[tuple]] | None]:
    """Dissect the captures of ``paths`` on the cluster at ``address`` (a scheduler address or a
    ``distributed.Client``) in ``tasks`` tasks (default: one per worker thread of the cluster).
    With ``out_dir`` the tasks write the tables there (see :func:`dissect.run.jobs.run_jobs`);
    without, their rows come back in memory. Returns the merged result and the rows (None when
    written)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise DissectError("--dask needs the dask extra: pip install 'wiredissect[dask]'") from None

    files = capture_files(paths)  # as given: the rows name them so (give paths the workers see)
    client = address if isinstance(address, Client) else Client(address)
    try:
        count = tasks or max(1, sum(client.nthreads().values()))
        return run_jobs(files, count, out_dir=os.path.abspath(out_dir) if out_dir else None, fmt=fmt,
                        digits=digits, filters=filters, limits=limits, quiet=quiet, blocks=blocks, keylog=keylog,
                        mapper=_cluster_mapper(client, quiet))
    finally:
        if client is not address:
            client.close()
