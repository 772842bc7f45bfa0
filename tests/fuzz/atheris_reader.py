"""Coverage-guided fuzzing of the reader and the pipeline with atheris (libFuzzer for Python).

Optional (``pip install atheris``; see docs/fuzzing.md). Each input is a whole capture file: it is
written to tmpfs and dissected with :func:`dissect.api.run`; a :class:`~dissect.errors.CaptureError`
is the right answer for a file that is no capture, anything else is a finding. Run from the
repository root; libFuzzer flags pass through:

    python -m tests.fuzz.atheris_reader /tmp/atheris-corpus captures \\
        -max_total_time=600 -rss_limit_mb=500 -timeout=10 -max_len=65536 \\
        -artifact_prefix=tests/fuzz/crashes/atheris-

The first directory collects the inputs that found new coverage; ``captures`` seeds it.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["dissect"]):
    from dissect.api import run
    from dissect.errors import CaptureError
    from dissect.output.writers import MemoryCollector

_DIR = tempfile.mkdtemp(prefix="dissect-atheris-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
_PATH = os.path.join(_DIR, "input.pcap")


def test_one_input(data: bytes) -> None:
    with open(_PATH, "wb") as f:
        f.write(data)
    try:
        run(_PATH, [MemoryCollector()])
    except CaptureError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
