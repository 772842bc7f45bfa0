"""``dissect report --dask`` on a rotated capture set beside the local runs, measured in one run.

    python3 benchmarks/dask_bench.py DIR_OF_ROTATED_FILES [--workers 1 2]

Starts a ``distributed.LocalCluster`` per worker count (in its own process, so that the client's
peak RSS is the ``dissect`` command's alone), runs ``dissect report --jobs 1 --no-html`` (one local
process) and ``dissect report --dask ADDRESS --no-html`` on the same files, and prints wall time,
CPU time of the command and its peak RSS (``os.wait4``), and whether every table holds the same lines
(--dask's rows are grouped by session_id: each of its tables is the local one sorted by session_id,
a stable sort). It also prints the CPU time of the cluster's processes (workers, nannies, scheduler)
during the command. Make a rotated set with, for example,

    python3 benchmarks/make_capture.py --packets 2000000 --connections 50 --out big.pcap
    editcap -c 100000 big.pcap rotated/part.pcap

This is a measurement to read, not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLUSTER = """
import resource, sys, time
from distributed import LocalCluster
c = LocalCluster(n_workers={n}, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1",
                 memory_limit=0)
print(c.scheduler_address, flush=True)
sys.stdin.readline()
before = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
sys.stdin.read()
c.close()
after = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before)), flush=True)
"""


def _peak_kb(pid: int) -> int:
    """The process's own peak RSS so far (VmHWM), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of the command's own process (VmHWM, read every
    50 ms: the rusage of wait4 can include more than the process itself)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0
    while True:
        peak = max(peak, _peak_kb(p.pid))
        got, status, usage = os.wait4(p.pid, os.WNOHANG)
        if got:
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if status:
        raise SystemExit(f"{' '.join(cmd)}: exit status {status}")
    print(f"  ({cmd[1]} {cmd[-3] if '--dask' in cmd else ''}: wait4 maxrss {usage.ru_maxrss // 1024} MB, "
          f"VmHWM {peak // 1024} MB)", file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, peak / 1024


def same_lines(a: Path, b: Path) -> bool:
    """Every table of ``b`` (--dask) is that of ``a`` (local) with its rows stably sorted by session_id
    (its first column; sio_broadcasts, made at the end, as it is), byte for byte."""
    for f in sorted(a.glob("*.csv")):
        lines = f.read_bytes().splitlines(keepends=True)
        if f.stem != "sio_broadcasts":
            lines = lines[:1] + sorted(lines[1:], key=lambda line: int(line.split(b",", 1)[0]))
        if b"".join(lines) != (b / f.name).read_bytes():
            print(f"  {f.name}: differs", file=sys.stderr)
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("captures", help="a directory of rotated capture files")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    files = sorted(str(p) for p in Path(args.captures).iterdir() if p.suffix in (".pcap", ".pcapng"))
    packets = 0
    out = Path(tempfile.mkdtemp(prefix="dissect-dask-bench-"))
    try:
        print(f"{len(files)} files in {args.captures}")
        rows = []
        local = out / "local"
        wall, cpu, rss = timed(["dissect", "report", *files, "--out", str(local), "--jobs", "1", "--no-html", "-q"])
        rows.append(("dissect report --jobs 1 (local)", wall, cpu, rss, "reference", 0.0))
        import json
        packets = sum(f["packets"] for f in json.loads((local / "summary.json").read_text())["files"])
        for n in args.workers:
            cluster = subprocess.Popen([sys.executable, "-c", CLUSTER.format(n=n)], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert cluster.stdout is not None and cluster.stdin is not None
            address = cluster.stdout.readline().strip()
            cluster.stdin.write("start\n")
            cluster.stdin.flush()
            try:
                d = out / f"dask{n}"
                wall, cpu, rss = timed(["dissect", "report", *files, "--out", str(d), "--dask", address, "--no-html",
                                        "-q"])
                same = "same lines" if same_lines(local, d) else "DIFFERENT"
                shutil.rmtree(d)
            finally:
                cluster.stdin.close()
                workers_cpu = float(cluster.stdout.readline() or "nan")  # the cluster's processes, after they end
                cluster.wait(timeout=60)
                time.sleep(3)  # the workers' processes gone before the next command is measured
            rows.append((f"dissect report --dask ({n} worker{'s' if n > 1 else ''})", wall, cpu, rss, same,
                         workers_cpu))
        print(f"{packets:,} packets\n")
        print(f"{'command':45} {'seconds':>8} {'client CPU s':>13} {'cluster CPU s':>14} {'client peak RSS MB':>19}"
              "  tables")
        for name, wall, cpu, rss, same, workers_cpu in rows:
            print(f"{name:45} {wall:8.2f} {cpu:13.2f} {workers_cpu:14.2f} {rss:19.0f}  {same}")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
