"""One process: the run core over every file, rows to the given consumers."""

from __future__ import annotations

from collections.abc import Sequence

from dissect.pipeline import Consumer
from dissect.protocols.tls import KeyLog
from dissect.run.core import Paths, RunResult, capture_files, dissect_files
from dissect.run.filters import Filters
from dissect.transport.limits import Limits


def run(paths: Paths, consumers: Sequence[Consumer], *, filters: Filters | None = None,
        limits: Limits | None = None, quiet: bool = True, keylog: KeyLog | None = None) -> RunResult:
    """Dissect ``paths`` and hand every row batch to ``consumers``; the result's
    ``summary`` is summary.json.

    Raises :class:`~dissect.errors.CaptureError` when a capture cannot be read at all; damage
    inside a readable capture is a warning in the summary.
    """
    return dissect_files(capture_files(paths), consumers, filters=filters, limits=limits, quiet=quiet,
                         keylog=keylog)
