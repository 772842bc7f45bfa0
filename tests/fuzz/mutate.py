"""Mutation fuzzer for dissect: real captures, mutated, run in worker processes under limits.

    python -m tests.fuzz.mutate --seconds 60 --seed 1       # time-bounded
    python -m tests.fuzz.mutate --count 100000 --seed 1     # the release run
    python -m tests.fuzz.mutate --replay tests/fuzz/crashes/<hash>.pcap
    python -m tests.fuzz.mutate --seed 1 --case 1234 --write /tmp/case.pcap

Case ``i`` of seed ``s`` is a pure function of ``(s, i)`` and the corpus (see
:func:`tests.fuzz.mutators.make_case`), so runs are deterministic whatever the scheduling, and
every finding is reproducible by its index. A finding (crash, hang, memory) is saved as
``tests/fuzz/crashes/<sha1>.pcap`` with ``<sha1>.txt`` (traceback, seed, index, mutations).
See docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = ROOT / "captures"
CRASH_DIR = Path(__file__).resolve().parent / "crashes"


def load_corpus(dirs: list[str]) -> list[tuple[str, bytes]]:
    files: list[str] = []
    for d in dirs:
        files += glob.glob(os.path.join(d, "*.pcap")) + glob.glob(os.path.join(d, "*.pcapng"))
    return [(os.path.basename(p), Path(p).read_bytes()) for p in sorted(set(files))]


@dataclass
class Options:
    seed: int = 1
    count: int | None = None
    seconds: float | None = None
    start: int = 0
    workers: int = 2
    time_limit: float = 10.0
    hard_limit: float = 30.0
    rss_limit_mb: int = 500
    as_limit_mb: int = 4096
    tables_every: int = 4
    html_every: int = 500
    jsonl_every: int = 10
    corpus: list[str] = field(default_factory=lambda: [str(DEFAULT_CORPUS)])
    crash_dir: str = str(CRASH_DIR)
    save: bool = True
    quiet: bool = False


@dataclass
class Finding:
    index: int
    status: str
    signature: str
    error: str
    seconds: float
    rss_kb: int
    seed_file: str = ""
    mutations: str = ""
    saved: str = ""


@dataclass
class Stats:
    cases: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    max_seconds: float = 0.0
    max_seconds_case: int = -1
    max_rss_kb: int = 0
    max_rss_case: int = -1
    elapsed: float = 0.0
    workers_restarted: int = 0

    @property
    def crashes(self) -> int:
        return self.by_status["crash"]

    @property
    def hangs(self) -> int:
        return self.by_status["hang"]

    @property
    def memory(self) -> int:
        return self.by_status["memory"]

    @property
    def signatures(self) -> Counter[str]:
        return Counter(f.signature for f in self.findings)

    def report(self) -> str:
        rate = self.cases / self.elapsed if self.elapsed else 0.0
        lines = [
            f"cases {self.cases} in {self.elapsed:.1f} s ({rate:.0f} cases/s)",
            "outcomes " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items())),
            f"crashes {self.crashes}, hangs {self.hangs}, memory {self.memory}, "
            f"unique signatures {len(self.signatures)}",
            f"max time per case {self.max_seconds * 1000:.1f} ms (case {self.max_seconds_case}), "
            f"max RSS {self.max_rss_kb / 1024:.1f} MB (case {self.max_rss_case})",
        ]
        if self.workers_restarted:
            lines.append(f"workers restarted after a kill or death: {self.workers_restarted}")
        for sig, n in self.signatures.most_common():
            f = next(x for x in self.findings if x.signature == sig)
            lines.append(f"  {n:6d} x {sig}  e.g. case {f.index} {f.saved}")
        return "\n".join(lines)


# -- worker --------------------------------------------------------------------------------------


def _worker(conn: Connection, wid: int, opts: Options, workdir: str) -> None:
    """Receive case indices, answer (index, status, seconds, rss_kb, error, signature)."""
    from tests.fuzz import harness
    from tests.fuzz.mutators import Corpus, make_case

    warnings.simplefilter("ignore")  # pandas casting chatter; exceptions are what count
    try:
        limit = opts.as_limit_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):
        pass
    corpus = Corpus(load_corpus(opts.corpus))
    harness.install_alarm()
    path = os.path.join(workdir, f"w{wid}.pcap")
    out = os.path.join(workdir, f"out{wid}")
    os.makedirs(out, exist_ok=True)
    conn.send(("ready", wid))
    while True:
        try:
            index = conn.recv()
        except EOFError:
            return
        if index is None:
            return
        try:
            data, _name, _what = make_case(corpus, opts.seed, index)
        except Exception:  # noqa: BLE001 - a bug of the fuzzer, not of dissect: report, go on
            conn.send((index, "fuzzer-error", 0.0, 0, traceback.format_exc(), "fuzzer-error"))
            continue
        with open(path, "wb") as f:
            f.write(data)
        fmt = "jsonl" if opts.jsonl_every and index % opts.jsonl_every == opts.jsonl_every - 1 else "csv"
        tables = bool(opts.tables_every) and index % opts.tables_every == 0
        html = bool(opts.html_every) and index % opts.html_every == opts.html_every - 1
        r = harness.run_case(path, out, opts.time_limit, opts.rss_limit_mb * 1024, fmt, tables, html)
        conn.send((index, r.status, r.seconds, r.rss_kb, r.error, r.signature))


class _Slot:
    def __init__(self, ctx: Any, wid: int, opts: Options, workdir: str) -> None:
        self.wid = wid
        self.parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, wid, opts, workdir), daemon=True)
        self.proc.start()
        child.close()
        self.index: int | None = None
        self.started = 0.0
        self.ready = False


# -- driver --------------------------------------------------------------------------------------


def _save(opts: Options, corpus: Any, f: Finding) -> None:
    from tests.fuzz.mutators import make_case

    try:
        data, name, what = make_case(corpus, opts.seed, f.index)
    except Exception:  # noqa: BLE001 - the fuzzer's own bug, reported as such
        return
    f.seed_file, f.mutations = name, what
    if not opts.save:
        return
    os.makedirs(opts.crash_dir, exist_ok=True)
    h = hashlib.sha1(data).hexdigest()[:16]
    cap = os.path.join(opts.crash_dir, f"{h}.pcap")
    with open(cap, "wb") as out:
        out.write(data)
    with open(os.path.join(opts.crash_dir, f"{h}.txt"), "w", encoding="utf-8") as out:
        out.write(f"status: {f.status}\nsignature: {f.signature}\nseed: {opts.seed}\ncase: {f.index}\n"
                  f"corpus file: {name}\nmutations: {what}\nseconds: {f.seconds:.3f}\n"
                  f"peak RSS kB: {f.rss_kb}\nreplay: python -m tests.fuzz.mutate --replay {cap}\n\n{f.error}")
    f.saved = os.path.relpath(cap)


def fuzz(opts: Options) -> Stats:
    """Run the cases ``start .. start+count`` (or until ``seconds`` elapse) on ``workers``
    processes and return what happened."""
    from tests.fuzz.mutators import Corpus

    if opts.count is None and opts.seconds is None:
        raise ValueError("give a count or seconds")
    corpus = Corpus(load_corpus(opts.corpus))
    if not corpus.raw:
        raise ValueError(f"no captures in {opts.corpus}")
    ctx = mp.get_context("spawn")
    # Every case writes its capture and six tables: on tmpfs that costs a tenth of a disk's.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    workdir = tempfile.mkdtemp(prefix="dissect-fuzz-", dir=shm)
    stats = Stats()
    t0 = time.monotonic()
    deadline = t0 + opts.seconds if opts.seconds is not None else None
    end_index = opts.start + opts.count if opts.count is not None else None
    next_index = opts.start
    slots = [_Slot(ctx, w, opts, workdir) for w in range(opts.workers)]
    last_print = t0
    seen_sigs: set[str] = set()

    def more() -> bool:
        if end_index is not None and next_index >= end_index:
            return False
        return deadline is None or time.monotonic() < deadline

    def record(index: int, status: str, seconds: float, rss_kb: int, error: str, sig: str) -> None:
        stats.cases += 1
        stats.by_status[status] += 1
        if seconds > stats.max_seconds:
            stats.max_seconds, stats.max_seconds_case = seconds, index
        if rss_kb > stats.max_rss_kb:
            stats.max_rss_kb, stats.max_rss_case = rss_kb, index
        if status in ("crash", "hang", "memory", "fuzzer-error"):
            f = Finding(index, status, sig, error, seconds, rss_kb)
            _save(opts, corpus, f)
            stats.findings.append(f)
            if sig not in seen_sigs and not opts.quiet:
                seen_sigs.add(sig)
                print(f"NEW {status}: case {index} {sig} -> {f.saved}\n{error.rstrip()}", file=sys.stderr, flush=True)

    def dispatch(s: _Slot) -> None:
        nonlocal next_index
        if more():
            s.index, s.started = next_index, time.monotonic()
            next_index += 1
            s.parent.send(s.index)
        else:
            s.index = None

    try:
        while True:
            busy = [s for s in slots if s.index is not None or not s.ready]
            if not busy:
                break
            ready = wait([s.parent for s in busy] + [s.proc.sentinel for s in busy], timeout=1.0)
            now = time.monotonic()
            for s in list(busy):
                if s.parent in ready:
                    try:
                        msg = s.parent.recv()
                    except EOFError:
                        msg = None
                    if msg is not None:
                        if msg[0] == "ready":
                            s.ready = True
                        else:
                            record(*msg)
                        dispatch(s)
                        continue
                dead = not s.proc.is_alive()
                stuck = s.index is not None and now - s.started > opts.hard_limit
                if dead or stuck:
                    if stuck:
                        s.proc.kill()
                    s.proc.join(5)
                    if s.index is not None:
                        what = "hang" if stuck else "crash"
                        why = (f"worker killed after {now - s.started:.1f} s (hard limit)" if stuck
                               else f"worker died with exit code {s.proc.exitcode}")
                        record(s.index, what, now - s.started, 0, why, "watchdog-kill" if stuck else "worker-died")
                    elif not s.ready:
                        raise RuntimeError(f"worker {s.wid} failed to start (exit code {s.proc.exitcode})")
                    stats.workers_restarted += 1
                    i = slots.index(s)
                    slots[i] = _Slot(ctx, s.wid, opts, workdir)
            if not opts.quiet and now - last_print >= 10:
                last_print = now
                el = now - t0
                print(f"[{el:6.0f} s] {stats.cases} cases ({stats.cases / el:.0f}/s), crashes {stats.crashes}, "
                      f"hangs {stats.hangs}, memory {stats.memory}, max {stats.max_seconds * 1000:.0f} ms, "
                      f"max RSS {stats.max_rss_kb / 1024:.0f} MB", file=sys.stderr, flush=True)
    finally:
        for s in slots:
            try:
                s.parent.send(None)
            except (OSError, BrokenPipeError):
                pass
        for s in slots:
            s.proc.join(5)
            if s.proc.is_alive():
                s.proc.kill()
                s.proc.join()
        shutil.rmtree(workdir, ignore_errors=True)
    stats.elapsed = time.monotonic() - t0
    return stats


def replay(path: str, opts: Options) -> int:
    """Run one capture through the harness in this process and print the outcome."""
    from tests.fuzz import harness

    harness.install_alarm()
    out = tempfile.mkdtemp(prefix="dissect-replay-")
    try:
        r = harness.run_case(path, out, opts.time_limit, opts.rss_limit_mb * 1024, tables=True, html=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"{r.status} in {r.seconds * 1000:.1f} ms, peak RSS {r.rss_kb / 1024:.1f} MB {r.signature}")
    if r.error:
        print(r.error)
    return 1 if r.status in harness.BAD else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz.mutate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, help="number of mutants")
    ap.add_argument("--seconds", type=float, help="run for this long (default 60 without --count)")
    ap.add_argument("--start", type=int, default=0, help="first case index (to resume or split a run)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=10.0, help="per-case limit in s (SIGALRM in the worker)")
    ap.add_argument("--hard-limit", type=float, default=30.0, help="worker killed past this many s on one case")
    ap.add_argument("--rss-limit-mb", type=int, default=500, help="per-case peak RSS limit")
    ap.add_argument("--as-limit-mb", type=int, default=4096, help="address-space rlimit of a worker")
    ap.add_argument("--tables-every", type=int, default=4, help="also build DataFrames every Nth case (0: never)")
    ap.add_argument("--html-every", type=int, default=500, help="also render report.html every Nth case (0: never)")
    ap.add_argument("--corpus", action="append", help="seed directory (repeatable; default captures/)")
    ap.add_argument("--crash-dir", default=str(CRASH_DIR))
    ap.add_argument("--no-save", action="store_true", help="do not write crashing inputs")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--replay", metavar="FILE", help="run one capture in-process and print the outcome")
    ap.add_argument("--case", type=int, help="with --write: regenerate this case of --seed")
    ap.add_argument("--write", metavar="FILE", help="write the mutant of --case to FILE")
    a = ap.parse_args(argv)
    opts = Options(seed=a.seed, count=a.count, seconds=a.seconds, start=a.start, workers=a.workers,
                   time_limit=a.time_limit, hard_limit=max(a.hard_limit, a.time_limit + 1),
                   rss_limit_mb=a.rss_limit_mb, as_limit_mb=a.as_limit_mb, tables_every=a.tables_every,
                   html_every=a.html_every, corpus=a.corpus or [str(DEFAULT_CORPUS)], crash_dir=a.crash_dir,
                   save=not a.no_save, quiet=a.quiet)
    if a.replay:
        return replay(a.replay, opts)
    if a.case is not None:
        from tests.fuzz.mutators import Corpus, make_case

        data, name, what = make_case(Corpus(load_corpus(opts.corpus)), opts.seed, a.case)
        print(f"case {a.case} of seed {opts.seed}: {name}: {what} ({len(data)} bytes)")
        if a.write:
            Path(a.write).write_bytes(data)
        return 0
    if opts.count is None and opts.seconds is None:
        opts.seconds = 60.0
    stats = fuzz(opts)
    print(stats.report())
    return 1 if stats.findings else 0


if __name__ == "__main__":
    sys.exit(main())
