#!/usr/bin/env python3
"""Run a command while tcpdump or dumpcap captures loopback traffic to a file.

    python3 capture.py --out ../x.pcap --tool tcpdump --iface lo --filter 'tcp port 9301' -- CMD...

The capture starts before CMD and stops (cleanly, so the file is complete) after CMD exits.
Formats: tcpdump writes pcap (``--nano`` for nanosecond timestamps); dumpcap writes pcapng, or pcap
with ``--pcap``. ``--iface any`` records Linux cooked headers: SLL from tcpdump, SLL or SLL2 from
dumpcap (``--linktype LINUX_SLL2``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time


def start_capture(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    if args.tool == "tcpdump":
        cmd = ["tcpdump", "-i", args.iface, "-U", "--immediate-mode", "-s", str(args.snaplen), "-w", args.out]
        if args.nano:
            cmd += ["--time-stamp-precision", "nano"]
        if args.linktype:
            cmd += ["-y", args.linktype]
        cmd += [args.filter]
    else:
        cmd = ["dumpcap", "-q", "-i", args.iface, "-s", str(args.snaplen), "-w", args.out]
        if args.pcap:
            cmd += ["-P"]
        if args.linktype:
            cmd += ["-y", args.linktype]
        cmd += ["-f", args.filter]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Both tools print a line on stderr once the capture is open; wait for the file to appear and
    # give the kernel filter a moment so the first SYN is not missed.
    deadline = time.time() + 10
    while time.time() < deadline and not os.path.exists(args.out):
        if proc.poll() is not None:
            sys.exit(f"capture.py: {cmd[0]} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.05)
    time.sleep(0.5)
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tool", choices=["tcpdump", "dumpcap"], default="tcpdump")
    ap.add_argument("--iface", default="lo")
    ap.add_argument("--filter", required=True, help="capture filter (BPF)")
    ap.add_argument("--linktype", default="", help="e.g. LINUX_SLL2 with dumpcap -i any")
    ap.add_argument("--nano", action="store_true", help="tcpdump: nanosecond timestamps")
    ap.add_argument("--pcap", action="store_true", help="dumpcap: write pcap instead of pcapng")
    ap.add_argument("--snaplen", type=int, default=262144)
    ap.add_argument("--settle", type=float, default=0.5, help="seconds to wait after CMD exits")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no command given after --")
    if os.path.exists(args.out):
        os.unlink(args.out)
    cap = start_capture(args)
    try:
        rc = subprocess.call(cmd)
    finally:
        time.sleep(args.settle)
        cap.send_signal(signal.SIGINT)
        try:
            cap.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cap.kill()
    return rc


if __name__ == "__main__":
    sys.exit(main())
