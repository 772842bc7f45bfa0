"""An analysis split by flows, as ``--dask`` runs it: the same rows as one process, by parts.

1. index each capture file, in parallel (:func:`dissect.run.flow_index.index_file`);
2. plan, once: the flows of the whole run with their session ids, grouped (an Engine.IO session's
   connections together) and dealt to tasks that each read a range of files
   (:func:`dissect.run.flow_plan.make_plan`);
3. run the tasks, in parallel (:func:`run_task`): the run core over the task's files with a
   :class:`TaskPlan`, writing a part (:class:`dissect.run.parts.PartWriter`) or returning its rows;
4. merge: the tasks' results into one :class:`~dissect.run.core.RunResult` (:func:`assemble`: what
   reading counted comes from the index pass, each file once; what dissecting counted from the
   tasks), the parts into the tables in session order (:func:`dissect.run.parts.merge_parts`), and
   ``sio_broadcasts`` from every task's events.

:mod:`dissect.run.dask` runs these steps on a Dask cluster; :func:`run_split` runs them one after
the other in this process (the tests compare it with a local run on every capture).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dissect.output.report_dir import temp_dir
from dissect.output.writers import Blocks, MemoryCollector, ReportWriter
from dissect.pipeline import Pipeline
from dissect.protocols.tls import KeyLog
from dissect.records import SESSION_TABLES
from dissect.run.core import Paths, RunResult, capture_files, dissect_files
from dissect.run.filters import Filters
from dissect.run.flow_index import TASK_COUNTERS, index_file
from dissect.run.flow_plan import Outline, TaskSpec, make_plan
from dissect.run.parts import PartWriter, join, make_dirs, merge_parts, open_file, remove_tree
from dissect.transport.flowsplit import PlanTable
from dissect.transport.limits import Limits


class TaskPlan:
    """A task's flows in the run core (:class:`dissect.run.core.FlowPlan`)."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    def install(self, pipe: Pipeline) -> None:
        s = self.spec
        d = pipe.dispatcher
        tcp, udp = s.flow_maps()
        pipe.flows = PlanTable(pipe.outbox, pipe.limits, d.first_data, d.app_protocol, s.files, tcp, udp)

    def before_finish(self, pipe: Pipeline) -> None:
        flows = pipe.flows
        assert isinstance(flows, PlanTable)
        flows.flush_late(self.spec.late)
        pipe.last_ts = self.spec.last_ts  # the run's end, for flows still open then


@dataclass
class Output:
    """Where tasks write their parts (``target``: a directory or fsspec URL) and in which format."""

    target: str
    fmt: str = "csv"
    digits: int = 6
    timed: bool = True  # the blocks' times wanted (report.html): PartWriter's ``timed``


@dataclass
class TaskResult:
    result: RunResult
    part: str | None = None  # where its part is (written to an Output)
    rows: dict[str, list[tuple]] | None = None  # its rows (no Output)
    consumer: Any = None  # the consumer its ``consumer`` factory made, having seen its rows


def run_task(spec: TaskSpec, paths: Sequence[str], output: Output | None = None, limits: Limits | None = None,
             filters: Filters | None = None, keylog: KeyLog | None = None, rows: bool = True,
             consumer: Callable[[], Any] | None = None) -> TaskResult:
    """One task of a plan: the run core over its files (``paths`` are the run's files). Without an
    ``output``, its rows come back (unless not ``rows``); a ``consumer`` factory's consumer sees
    them and comes back (a picklable class: ``dissect summary --sessions``'s list)."""
    files = [paths[i] for i in spec.files]
    keys = keylog.copy() if keylog is not None else KeyLog()
    for text in spec.secrets:  # what the files before this task's first carried
        keys.add_text(text)
    plan = None if spec.whole else TaskPlan(spec)
    if output is None:
        collector = MemoryCollector() if rows else None
        extra = consumer() if consumer is not None else None
        consumers = [c for c in (collector, extra) if c is not None]
        result = dissect_files(files, consumers, filters=filters, limits=limits, keylog=keys, plan=plan)
        if collector is None:
            return TaskResult(result, consumer=extra)
        collector.rows.pop("sio_broadcasts", None)
        return TaskResult(result, rows=collector.rows, consumer=extra)
    writer = PartWriter(output.target, output.fmt, output.digits, f"task-{spec.number}", timed=output.timed)
    result = dissect_files(files, [writer], filters=filters, limits=limits, keylog=keys, plan=plan)
    return TaskResult(result, part=writer.close())


class Assembly:
    """The run's result, task by task (:meth:`add`, in any order): reading's figures from the index
    pass, dissecting's from the tasks."""

    def __init__(self, outline: Outline) -> None:
        self.outline = outline
        self.result: RunResult | None = None
        if not outline.whole:
            self.result = RunResult(files=list(outline.files), warnings=Counter(outline.warnings),
                                    warning_details=list(outline.warning_details), decode=Counter(outline.decode),
                                    nanosecond=outline.nanosecond, sessions=outline.sessions, row_order="sessions")

    def add(self, task: RunResult) -> None:
        if self.result is None:  # the whole run in one task: its result is the run's
            self.result = task
            task.row_order = "sessions"
        else:
            self.result.merge_task(task, TASK_COUNTERS)


def assemble(outline: Outline, results: Sequence[RunResult]) -> RunResult:
    """The run's result from every task's (:class:`Assembly`)."""
    assembly = Assembly(outline)
    for r in results:
        assembly.add(r)
    assert assembly.result is not None
    return assembly.result


@dataclass
class Conclusion:
    """What the client of a split run needs once the tasks are done (:func:`conclude`)."""

    summary: dict[str, Any]
    parts: list[str]
    broadcasts: str | None = None  # the sio_broadcasts table file, whole (CSV, JSON lines)
    broadcast_blocks: Blocks | None = None
    broadcast_rows: Sequence[tuple] | None = None  # Parquet: its rows


def conclude(outline: Outline, done: Sequence[TaskResult], output: Output,
             skipped: Sequence[tuple[str, str]] = ()) -> Conclusion:
    """Where the tasks' results meet (``--dask``: a task on a worker, so that the client holds no
    summary builder): summary.json, the parts to merge, and the sio_broadcasts table made from every
    task's events (written next to the parts)."""
    assembly = Assembly(outline)
    for d in done:
        assembly.add(d.result)
    result = assembly.result
    assert result is not None
    result.skipped = list(skipped)
    rows = result.broadcasts()
    parts = sorted(d.part for d in done if d.part)
    if output.fmt == "parquet":
        return Conclusion(result.summary, parts, broadcast_rows=rows)
    aside = temp_dir("dissect-broadcasts-")
    try:
        writer = ReportWriter(aside, output.fmt, output.digits, blocks=True)
        for chunk in rows.chunks():
            writer.add("sio_broadcasts", chunk)
        writer.close()
        name = f"sio_broadcasts.{output.fmt}"
        where = join(output.target, f"broadcasts-{uuid.uuid4().hex[:12]}.{output.fmt}")
        with open(os.path.join(aside, name), "rb") as src, open_file(where, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return Conclusion(result.summary, parts, where, writer.blocks["sio_broadcasts"])


def gather_rows(done: Sequence[dict[str, list[tuple]] | None], result: RunResult) -> dict[str, list[tuple]]:
    """The rows of every task by table, and ``sio_broadcasts`` made from all of them."""
    rows: dict[str, list[tuple]] = {t: [] for t in SESSION_TABLES}
    for task_rows in done:
        for table, rs in (task_rows or {}).items():
            rows[table].extend(rs)
    rows["sio_broadcasts"] = list(result.broadcasts())
    return rows


def run_split(paths: Paths, *, filters: Filters | None = None, limits: Limits | None = None,
              keylog: KeyLog | None = None, threads: int = 2, output: Output | None = None,
              out_dir: str | None = None) -> tuple[RunResult, dict[str, list[tuple]] | None, dict[str, int],
                                                   dict[str, Blocks]]:
    """The steps of the module doc in this process, planned for ``threads`` workers. With
    ``output`` and ``out_dir``, the parts go to ``output.target`` and the tables into ``out_dir``
    (returns the rows per table and their blocks); else the rows come back."""
    files = capture_files(paths)
    limits = limits or Limits()
    plan = make_plan([index_file(f, limits) for f in files], limits, filters, keylog is not None, threads)
    if output is not None:
        make_dirs(output.target)
    try:
        done = [run_task(spec, files, output if out_dir else None, limits, filters, keylog) for spec in plan.tasks]
        result = assemble(plan.outline, [d.result for d in done])
        if output is None or out_dir is None:
            rows = gather_rows([d.rows for d in done], result)
            return result, rows, {t: len(rs) for t, rs in rows.items()}, {}
        extra: dict[str, Sequence[tuple]] = {"sio_broadcasts": result.broadcasts()}
        counts, blocks = merge_parts([d.part for d in done if d.part], out_dir, output.fmt, output.digits, extra)
        return result, None, counts, blocks
    finally:
        if output is not None:
            remove_tree(output.target)
