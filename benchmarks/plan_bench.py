"""Memory and CPU of the plan task of a split run (``--dask``): ``make_plan`` over the index of a set.

    python3 benchmarks/plan_bench.py DIR_OR_FILES... [--threads 8]

Indexes the files (not measured), pickles the indexes as Dask hands them to the plan task, then
measures, under tracemalloc, unpickling them and ``make_plan``: the peak of traced memory, the
memory the plan holds when done; and, untraced, the CPU time of unpickling and of ``make_plan``
(best of 3). A set of short connections:

    python3 benchmarks/make_capture.py --connections 20000 --packets 400000 --out /tmp/c.pcap
    mkdir /tmp/r && editcap -c 20000 /tmp/c.pcap /tmp/r/p.pcap     # 20 files
"""

from __future__ import annotations

import argparse
import gc
import pickle
import time
import tracemalloc

from dissect.run.core import capture_files
from dissect.run.flow_index import index_file
from dissect.run.flow_plan import make_plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    files = capture_files(args.paths)
    t = time.process_time()
    blob = pickle.dumps([index_file(f) for f in files])
    index_cpu = time.process_time() - t
    cpu = load = 1e9
    for _ in range(3):  # CPU time without tracing (tracemalloc slows allocations): the best of 3
        t = time.process_time()
        indexes = pickle.loads(blob)
        t1 = time.process_time()
        make_plan(indexes, threads=args.threads)
        load, cpu = min(load, t1 - t), min(cpu, time.process_time() - t1)
    del indexes
    gc.collect()
    tracemalloc.start()
    indexes = pickle.loads(blob)
    held_logs = tracemalloc.get_traced_memory()[0]
    plan = make_plan(indexes, threads=args.threads)
    del indexes
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    flows = plan.outline.sessions
    print(f"files {len(files)}  flows {flows}  tasks {len(plan.tasks)}  index CPU {index_cpu:.2f} s  "
          f"pickled indexes {len(blob) / 1e6:.2f} MB")
    print(f"indexes unpickled {held_logs / 1e6:.2f} MB  peak {peak / 1e6:.2f} MB ({peak / max(1, flows):.0f} B a flow)"
          f"  plan held {held / 1e6:.2f} MB")
    print(f"CPU: unpickling {load:.3f} s + make_plan {cpu:.3f} s = {1e3 * (load + cpu) / max(1, flows):.3f} ms a flow")


if __name__ == "__main__":
    main()
