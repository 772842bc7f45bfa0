"""``--dask ADDRESS``: an analysis split by flows (:mod:`dissect.run.split`) on a Dask cluster.

1. one task per capture file indexes its flows (in parallel; the logs stay on the workers);
2. one task replays the logs in file order and plans: every flow gets a local run's session id,
   the flows of an Engine.IO session (polling connections, the WebSocket upgrading them) one group,
   and the groups go to tasks that read only the files their flows span (a group inside one file:
   a task of that file; a group running through rotated files: a task reading those files, dealt
   among as many tasks as the cluster has threads);
3. the tasks dissect their flows, write their tables as part files (aside, renamed when whole) and
   return only their counters and summary builder;
4. the client merges the part files into the report's tables by streaming, in session order
   (summary.json: ``row_order: sessions``), and writes ``sio_broadcasts`` from every task's events.

The client never holds rows nor summary builders: the tasks' results meet in a last task on a
worker, which makes summary.json and ``sio_broadcasts``; the client's memory is the plan's outline
and the part files' indexes of one table. A worker that dies mid-task: Dask runs the task again; a part
is read only from the name its task's result gives, so nothing is duplicated or lost.

The workers need ``wiredissect`` installed, the capture paths readable as given (absolute paths on
shared storage), and the part files' place writable: a directory inside the report (``--out`` on
shared storage), or ``parts`` (``--dask-scratch``), a directory or an fsspec URL such as
``s3://bucket/tmp`` (fsspec and its backend installed on the client and the workers). Without an
output (the Python API), the tasks return their rows instead.

Dask is an optional extra: ``pip install 'wiredissect[dask]'``.
"""

from __future__ import annotations

import heapq
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dissect.errors import DissectError
from dissect.output.writers import Blocks
from dissect.protocols.tls import KeyLog
from dissect.run.core import Paths, RunResult, capture_files
from dissect.run.filters import Filters
from dissect.run.flow_index import index_file
from dissect.run.flow_plan import Outline, Plan, TaskSpec, make_plan
from dissect.run.parts import join, make_dirs, merge_parts, open_file, remove_tree
from dissect.run.split import Assembly, Conclusion, Output, TaskResult, conclude, gather_rows, run_task
from dissect.transport.limits import Limits

RETRIES = 2  # a task that failed is run again this many times (one whose worker died: Dask's own rule)


def _outline(plan: Plan) -> Outline:
    return plan.outline


def _task(plan: Plan, number: int) -> TaskSpec:
    return plan.tasks[number]


class _Progress:
    """One line on a terminal: how many tasks of a step are done."""

    def __init__(self, quiet: bool) -> None:
        self.show = not quiet and sys.stderr.isatty()

    def done(self, futures: Sequence[Any], what: str) -> Iterator[Any]:
        """Each of ``futures`` as it completes."""
        from distributed import as_completed

        for n, future in enumerate(as_completed(futures), 1):
            if self.show:
                sys.stderr.write(f"\rdissect: {what} {n}/{len(futures)}")
                sys.stderr.flush()
            yield future
        if self.show:
            sys.stderr.write("\n")


def _deal(work: Sequence[float], threads: dict[str, int]) -> list[str]:
    """A worker for each task, the largest first to the least loaded thread: the tasks depend on the
    plan, which one worker holds, and would otherwise all be placed there."""
    slots = [(0.0, i, addr) for i, (addr, n) in enumerate(sorted(threads.items())) for _ in range(max(1, n))]
    heapq.heapify(slots)
    out = [""] * len(work)
    for k in sorted(range(len(work)), key=lambda k: -work[k]):
        load, i, addr = heapq.heappop(slots)
        out[k] = addr
        heapq.heappush(slots, (load + work[k], i, addr))
    return out


def _connect(address: Any) -> tuple[Any, bool]:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise DissectError("--dask needs the dask extra: pip install 'wiredissect[dask]'") from None
    if isinstance(address, Client):
        return address, False
    try:
        return Client(address), True
    except (OSError, TimeoutError, ValueError) as e:
        raise DissectError(f"--dask {address}: cannot reach the scheduler ({e})") from None


def run_dask(paths: Paths, address: Any, *, out_dir: str | None = None, fmt: str = "csv", digits: int = 6,
             filters: Filters | None = None, limits: Limits | None = None, keylog: KeyLog | None = None,
             quiet: bool = True, blocks: dict[str, Blocks] | None = None, tasks: int | None = None,
             parts: str | None = None, skipped: Sequence[tuple[str, str]] = (), rows: bool = True,
             consumer: Callable[[], Any] | None = None, on_consumer: Callable[[Any], None] | None = None,
             ) -> tuple[RunResult, dict[str, list[tuple]] | None]:
    """Dissect the captures of ``paths`` on the cluster at ``address`` (a scheduler address or a
    ``distributed.Client``), planned for ``tasks`` threads (default: the cluster's). With
    ``out_dir`` the tables are written there (``blocks``, when given, receives where their blocks
    of rows are; the part files go to ``parts``, default a directory inside ``out_dir``) and the
    result's summary.json is made on a worker (naming the ``skipped`` files); without, the rows
    come back (unless not ``rows``: then only the result, as ``dissect summary`` needs). Without
    ``out_dir``, each task can also run a ``consumer`` (a factory, picklable: a class) over its rows;
    ``on_consumer`` receives each task's, as the tasks end. Returns the run's result and the rows
    (None when written or not wanted)."""
    files = capture_files(paths)  # as given: the rows name them so (give paths the workers see)
    limits = limits or Limits()
    client, opened = _connect(address)
    where = None
    if out_dir is not None:
        where = join(parts, f"dissect-{uuid.uuid4().hex[:12]}") if parts else \
            os.path.join(os.path.abspath(out_dir), f".dissect-parts-{uuid.uuid4().hex[:12]}")
    try:
        progress = _Progress(quiet)
        threads = tasks or max(1, sum(client.nthreads().values()))
        index = client.map(index_file, files, limits=limits, pure=False, retries=RETRIES)
        for _ in progress.done(index, "files indexed"):
            pass
        plan = client.submit(make_plan, index, limits, filters, keylog is not None, threads, pure=False)
        outline: Outline = client.submit(_outline, plan, pure=False).result()
        del index
        specs = [client.submit(_task, plan, k, pure=False) for k in range(len(outline.tasks))]
        output = None
        if where is not None:
            make_dirs(where)
            output = Output(where, fmt, digits, timed=blocks is not None)
        futures = [client.submit(run_task, spec, files, output, limits, filters, keylog, rows, consumer, pure=False,
                                 retries=RETRIES, workers=[where_to], allow_other_workers=True)
                   for spec, where_to in zip(specs, _deal([w for _f, w in outline.tasks], client.nthreads()),
                                             strict=True)]
        del plan, specs
        for _ in progress.done(futures, "tasks done"):
            pass
        if output is not None:
            assert out_dir is not None and where is not None
            return _conclude(client, outline, futures, output, out_dir, skipped, blocks), None
        # the rows come back: each task's result merged as it comes
        assembly = Assembly(outline)
        got_rows: list[dict[str, list[tuple]] | None] = []
        for future in futures:
            got: TaskResult = future.result()
            future.release()
            assembly.add(got.result)
            got_rows.append(got.rows)
            if on_consumer is not None and got.consumer is not None:
                on_consumer(got.consumer)
            del got
        del futures
        result = assembly.result
        assert result is not None
        return result, gather_rows(got_rows, result) if rows else None
    finally:
        if where is not None:
            remove_tree(where)
        if opened:
            client.close()


def _part_of(done: TaskResult) -> str | None:
    return done.part


def _conclude(client: Any, outline: Outline, futures: list[Any], output: Output, out_dir: str,
              skipped: Sequence[tuple[str, str]], blocks: dict[str, Blocks] | None) -> RunResult:
    """The end of a run writing its tables: a task on a worker makes summary.json and
    ``sio_broadcasts`` from every task's result while the client merges the parts into the tables."""
    parts = sorted(p for p in client.gather([client.submit(_part_of, f, pure=False) for f in futures]) if p)
    ending = client.submit(conclude, outline, futures, output, skipped, pure=False)
    del futures
    concluded: list[Conclusion] = []

    def broadcasts() -> dict[str, Sequence[tuple]] | None:
        concluded.append(ending.result())  # made meanwhile
        rows = concluded[0].broadcast_rows
        return {"sio_broadcasts": rows} if rows is not None else None

    _counts, written = merge_parts(parts, out_dir, output.fmt, output.digits, broadcasts)
    done = concluded[0]
    if done.broadcasts is not None:
        with open_file(done.broadcasts, "rb") as src, \
                open(os.path.join(out_dir, f"sio_broadcasts.{output.fmt}"), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if done.broadcast_blocks is not None:
            written["sio_broadcasts"] = done.broadcast_blocks
    if blocks is not None:
        blocks.update(written)
    return RunResult.concluded(done.summary)
