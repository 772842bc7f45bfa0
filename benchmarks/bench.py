#!/usr/bin/env python3
"""Throughput of ``dissect report`` beside tshark's on the same capture, measured in one run.

    python3 benchmarks/bench.py                       # makes a 500,000-packet capture first
    python3 benchmarks/bench.py --capture big.pcap    # any capture
    python3 benchmarks/bench.py --floor               # and floor.py's lower bound for one process
    python3 benchmarks/bench.py --html                # also the default report, with report.html
    python3 benchmarks/bench.py --jobs 4              # also --jobs 4 (workers sharing the sessions)

``dissect report`` runs with its default ``--jobs`` (2 on two cores or more: one process dissects,
one writes) and with ``--jobs 1`` (one process). dissect writes every table of REPORTS.md (CSV)
plus summary.json; tshark extracts the WebSocket
frame fields of the issue's job (``-Y websocket -T fields``) to a file. Each command runs once, as a
child process; wall time and the child's peak RSS (``os.wait4``) are printed with the ratio.
This is a measurement to read, not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

TSHARK_FIELDS = [
    "frame.time_epoch", "tcp.stream", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport",
    "websocket.fin", "websocket.rsv", "websocket.opcode", "websocket.mask", "websocket.payload_length",
]


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (Linux /proc), in KiB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return total


def measure(cmd: list[str], stdout_path: str | None = None) -> tuple[float, float, int]:
    """Run ``cmd`` once: (wall seconds, peak RSS in MB of the process and its children, exit status).

    The peak is the larger of the kernel's ru_maxrss (the main process) and the largest sum over
    the process tree seen by sampling every 50 ms (worker processes of --jobs).
    """
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
    peak = [0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if stdout_path:
        out.close()  # type: ignore[union-attr]
    return wall, max(usage.ru_maxrss, peak[0]) / 1024, os.waitstatus_to_exitcode(status)


def _default_jobs() -> int:
    """What ``dissect report`` picks without --jobs (see dissect.cli)."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def count_packets(path: str) -> int:
    sys.path.insert(0, str(HERE.parent))
    from dissect.capture.reader import CaptureReader

    return sum(1 for _ in CaptureReader(path))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", help="capture to measure (default: make one)")
    ap.add_argument("--packets", type=int, default=500_000, help="size of the capture to make")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=0,
                    help="also run dissect --jobs N when N > 2 (workers sharing the sessions)")
    ap.add_argument("--html", action="store_true",
                    help="also run the default dissect report, which writes report.html as well")
    ap.add_argument("--keep", action="store_true", help="keep the outputs in the temp directory")
    ap.add_argument("--floor", action="store_true",
                    help="also run floor.py: the least one Python process takes for the three big tables "
                         "(only for captures made by make_capture.py)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dissect-bench-"))
    capture = args.capture
    if capture is None:
        capture = str(work / f"ws_{args.packets}.pcap")
        subprocess.run([sys.executable, str(HERE / "make_capture.py"), "--packets", str(args.packets),
                        "--connections", str(args.connections), "--out", capture], check=True)
    packets = count_packets(capture)
    size_mb = os.path.getsize(capture) / 1e6
    print(f"capture: {capture} ({packets:,} packets, {size_mb:.1f} MB)")

    rows: list[tuple[str, float, float, int]] = []
    dissect_cmd = [sys.executable, "-m", "dissect", "report", capture, "--out", str(work / "out"),
                   "--no-html", "--quiet"]
    runs = [("dissect report --jobs 1", dissect_cmd + ["--jobs", "1"]),
            (f"dissect report (--jobs {_default_jobs()})", dissect_cmd + ["--out", str(work / "outd")])]
    if args.jobs > 2:
        runs.append((f"dissect report --jobs {args.jobs}",
                     dissect_cmd + ["--jobs", str(args.jobs), "--out", str(work / "outj")]))
    if args.html:
        runs.append((f"... + report.html (--jobs {_default_jobs()})",
                     dissect_cmd[:-2] + ["--quiet", "--out", str(work / "outh")]))
    if args.floor:
        runs.append(("floor.py (lower bound, 3 tables)", [sys.executable, str(HERE / "floor.py"), capture]))
    for label, cmd in runs:
        wall, rss, code = measure(cmd)
        if code:
            print(f"{label} failed with exit {code}", file=sys.stderr)
            return 1
        rows.append((label, wall, rss, code))

    tshark = shutil.which("tshark")
    t_wall = None
    if tshark:
        cmd = [tshark, "-r", capture, "-Y", "websocket", "-T", "fields"]
        for f in TSHARK_FIELDS:
            cmd += ["-e", f]
        t_wall, t_rss, code = measure(cmd, str(work / "tshark.tsv"))
        rows.append(("tshark -Y websocket -T fields", t_wall, t_rss, code))
    else:
        print("tshark not installed: no comparison (apt-get install tshark)")

    print(f"\n{'command':34s} {'seconds':>8s} {'packets/s':>11s} {'peak RSS MB':>12s} {'vs tshark':>10s}")
    print("(peak RSS: all processes of the command together)")
    for label, wall, rss, _ in rows:
        ratio = f"{t_wall / wall:.2f}x" if t_wall and not label.startswith("tshark") else ""
        print(f"{label:34s} {wall:8.2f} {packets / wall:11,.0f} {rss:12.0f} {ratio:>10s}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\noutputs kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
