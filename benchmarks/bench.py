#!/usr/bin/env python3
"""Throughput of ``dissect report`` beside tshark's on the same capture, measured in one run.

    python3 benchmarks/bench.py                       # makes a 500,000-packet capture first
    python3 benchmarks/bench.py --capture big.pcap    # any capture
    python3 benchmarks/bench.py --floor               # and floor.py's lower bound for one process
    python3 benchmarks/bench.py --pure                # and --jobs 1 on the pure-Python path
    python3 benchmarks/bench.py --html                # also the default report, with report.html
    python3 benchmarks/bench.py --jobs 4              # also --jobs 4 (workers sharing the sessions)
    python3 benchmarks/bench.py --tls                 # and the same traffic over TLS 1.3, decrypted
    python3 benchmarks/bench.py --tls-only --tls-capture tls.pcap --tls-keylog tls.keys
    python3 benchmarks/bench.py --ipv6 --deflate      # and the same traffic over IPv6, and compressed

``dissect report`` runs with ``--jobs 1`` (one process; the default with the compiled core) and
``--jobs 2`` (two workers sharing the sessions with the compiled core; in pure Python one process
dissects, one writes, its default on two cores or more).
dissect writes every table of REPORTS.md (CSV) plus summary.json; tshark extracts the WebSocket
frame fields of the issue's job (``-Y websocket -T fields``) to a file. Each command runs once, as a
child process; wall time and the child's peak RSS (``os.wait4``) are printed with the ratio, and its
CPU time (user + system), which says more than wall time on a loaded machine.
With ``--tls`` the same commands run again on the TLS 1.3 capture of ``make_capture.py --tls``
(the same connections and frames, every write one AES-128-GCM record), dissect with
``--tls-keylog`` and tshark with ``-o tls.keylog_file``, and the TLS table is printed beside the
plaintext one with the ratio of their times.
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


def measure(cmd: list[str], stdout_path: str | None = None,
            env: dict[str, str] | None = None) -> tuple[float, float, float, int]:
    """Run ``cmd`` once: (wall seconds, CPU seconds (user + system, with the children it waited for), peak
    RSS in MB of the process and its children, exit status).

    The peak is the larger of the kernel's ru_maxrss (the main process) and the largest sum over
    the process tree seen by sampling every 50 ms (worker processes of --jobs).
    """
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
    peak = [0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env)
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
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, max(usage.ru_maxrss, peak[0]) / 1024, os.waitstatus_to_exitcode(status)


def _two_processes() -> str:
    """What --jobs 2 runs (dissect.cli.two_stages)."""
    from dissect.cli import two_stages

    return "dissect + write" if two_stages(2) else "2 workers"


def _default_jobs() -> int:
    """What ``dissect report`` picks without --jobs (dissect.cli.default_jobs)."""
    from dissect.cli import default_jobs

    return default_jobs()


def count_packets(path: str) -> int:
    sys.path.insert(0, str(HERE.parent))
    from dissect.capture.reader import CaptureReader

    return sum(1 for _ in CaptureReader(path))


def make_capture(work: Path, packets: int, connections: int, tls: bool,
                 variant: str = "") -> tuple[str, str | None]:
    """A capture of make_capture.py (and its key log with ``tls``) in ``work``; ``variant``:
    ``ipv6`` or ``deflate`` (make_capture.py's --ipv6, --deflate)."""
    name = f"ws{'_tls' if tls else ''}{'_' + variant if variant else ''}_{packets}"
    capture = str(work / f"{name}.pcap")
    cmd = [sys.executable, str(HERE / "make_capture.py"), "--packets", str(packets),
           "--connections", str(connections), "--out", capture]
    subprocess.run(cmd + (["--tls"] if tls else []) + ([f"--{variant}"] if variant else []), check=True)
    return capture, str(work / f"{name}.keys") if tls else None


Row = tuple[str, float, float, float]  # label, wall seconds, CPU seconds, peak RSS MB


def run_all(capture: str, keylog: str | None, args: argparse.Namespace, work: Path, tag: str) -> list[Row] | None:
    """Every command of the table on ``capture`` (decrypting with ``keylog``)."""
    keys = ["--tls-keylog", keylog] if keylog else []
    out = work / f"out{tag}"
    dissect_cmd = [sys.executable, "-m", "dissect", "report", capture, *keys, "--no-html", "--quiet"]
    runs = [("dissect report --jobs 1", dissect_cmd + ["--jobs", "1", "--out", f"{out}1"]),
            (f"dissect report --jobs 2 ({_two_processes()})", dissect_cmd + ["--jobs", "2", "--out", f"{out}d"])]
    if args.jobs > 2:
        runs.append((f"dissect report --jobs {args.jobs}",
                     dissect_cmd + ["--jobs", str(args.jobs), "--out", f"{out}j"]))
    if args.html:
        runs.append((f"... + report.html (--jobs {_default_jobs()})",
                     dissect_cmd[:-2] + ["--quiet", "--out", f"{out}h"]))
    if args.pure:
        runs.append(("dissect report --jobs 1, pure Python", dissect_cmd + ["--jobs", "1", "--out", f"{out}p"]))
    if args.floor and not keylog:
        runs.append(("floor.py (lower bound, 3 tables)", [sys.executable, str(HERE / "floor.py"), capture]))
    rows: list[Row] = []
    for label, cmd in runs:
        env = dict(os.environ, DISSECT_NO_EXTENSIONS="1") if label.endswith("pure Python") else None
        wall, cpu, rss, code = measure(cmd, env=env)
        if code:
            print(f"{label} failed with exit {code}", file=sys.stderr)
            return None
        rows.append((label, wall, cpu, rss))
    tshark = shutil.which("tshark")
    if tshark:
        cmd = [tshark, "-r", capture, *(["-o", f"tls.keylog_file:{keylog}"] if keylog else []),
               "-Y", "websocket", "-T", "fields"]
        for f in TSHARK_FIELDS:
            cmd += ["-e", f]
        t_wall, t_cpu, t_rss, _code = measure(cmd, str(work / f"tshark{tag}.tsv"))
        rows.append((f"tshark {'-o tls.keylog_file ' if keylog else ''}-Y websocket -T fields", t_wall, t_cpu, t_rss))
    else:
        print("tshark not installed: no comparison (apt-get install tshark)")
    return rows


def _tshark_version() -> str:
    out = subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "tshark"


def print_table(title: str, capture: str, rows: list[Row]) -> None:
    packets = count_packets(capture)
    print(f"\n{title}: {capture} ({packets:,} packets, {os.path.getsize(capture) / 1e6:.1f} MB)")
    t_wall = next((wall for label, wall, _, _ in rows if label.startswith("tshark")), None)
    print(f"{'command':48s} {'seconds':>8s} {'packets/s':>11s} {'peak RSS MB':>12s} {'vs tshark':>10s} {'CPU s':>7s}")
    for label, wall, cpu, rss in rows:
        ratio = f"{t_wall / wall:.2f}x" if t_wall and not label.startswith("tshark") else ""
        print(f"{label:48s} {wall:8.2f} {packets / wall:11,.0f} {rss:12.0f} {ratio:>10s} {cpu:7.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", help="capture to measure (default: make one)")
    ap.add_argument("--packets", type=int, default=500_000, help="size of the capture to make")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=0,
                    help="also run dissect --jobs N when N > 2 (workers sharing the sessions)")
    ap.add_argument("--html", action="store_true",
                    help="also run the default dissect report, which writes report.html as well")
    ap.add_argument("--pure", action="store_true",
                    help="also run dissect report --jobs 1 on the pure-Python path (DISSECT_NO_EXTENSIONS=1)")
    ap.add_argument("--keep", action="store_true", help="keep the outputs in the temp directory")
    ap.add_argument("--floor", action="store_true",
                    help="also run floor.py: the least one Python process takes for the three big tables "
                         "(only for captures made by make_capture.py; not on the TLS capture)")
    ap.add_argument("--tls", action="store_true",
                    help="also measure the same traffic over TLS 1.3, decrypted with its key log (dissect "
                         "--tls-keylog, tshark -o tls.keylog_file)")
    ap.add_argument("--tls-only", action="store_true", help="as --tls, without the plaintext runs")
    ap.add_argument("--ipv6", action="store_true",
                    help="also measure the same traffic over IPv6 (make_capture.py --ipv6; --packets of them)")
    ap.add_argument("--deflate", action="store_true",
                    help="also measure the same traffic under permessage-deflate (make_capture.py --deflate)")
    ap.add_argument("--tls-capture", help="the TLS capture to measure (default: make one like the plaintext one)")
    ap.add_argument("--tls-keylog", help="its key log (default: the TLS capture's name with .keys)")
    args = ap.parse_args()
    tls = args.tls or args.tls_only or args.tls_capture is not None

    work = Path(tempfile.mkdtemp(prefix="dissect-bench-"))
    tables: list[tuple[str, str, list[Row]]] = []
    if not args.tls_only:
        capture = args.capture or make_capture(work, args.packets, args.connections, tls=False)[0]
        rows = run_all(capture, None, args, work, "")
        if rows is None:
            return 1
        tables.append(("plaintext", capture, rows))
    if tls:
        if args.tls_capture:
            capture, keylog = args.tls_capture, args.tls_keylog or str(Path(args.tls_capture).with_suffix(".keys"))
        else:
            capture, keylog = make_capture(work, args.packets, args.connections, tls=True)
            keylog = args.tls_keylog or keylog
        rows = run_all(capture, keylog, args, work, "_tls")
        if rows is None:
            return 1
        tables.append(("TLS 1.3, decrypted", capture, rows))
    for variant, title in (("ipv6", "over IPv6"), ("deflate", "permessage-deflate")):
        if getattr(args, variant):
            capture = make_capture(work, args.packets, args.connections, tls=False, variant=variant)[0]
            rows = run_all(capture, None, args, work, f"_{variant}")
            if rows is None:
                return 1
            tables.append((title, capture, rows))

    version = subprocess.run([sys.executable, "-m", "dissect", "--version"], capture_output=True, text=True)
    print(f"\n{version.stdout.strip()}; {shutil.which('tshark') and _tshark_version()}")
    print("(peak RSS: all processes of the command together)")
    for title, capture, rows in tables:
        print_table(title, capture, rows)
    if len(tables) >= 2 and tables[1][0].startswith("TLS"):
        plain = {r[0]: r for r in tables[0][2]}
        print(f"\n{'TLS / plaintext':50s} {'seconds':>8s} {'CPU s':>7s}")
        for label, wall, cpu, _ in tables[1][2]:
            base = plain.get(label) or plain.get(label.replace("-o tls.keylog_file ", ""))
            if base:
                print(f"  {label:48s} {wall / base[1]:8.2f} {cpu / base[2]:7.2f}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\noutputs kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
