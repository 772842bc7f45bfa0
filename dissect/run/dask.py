"""``--dask ADDRESS``: the per-file work of an analysis on an existing Dask cluster.

Each capture file is one task: a worker dissects it with its own flow table and returns its rows,
its summary builder and its reader statistics. The client renumbers sessions (file by file, in the
order given: a file's session ids follow the previous file's) and merges. The result equals a local
run of the same files whenever no connection continues from one file into the next (rotated
captures of one long connection are better analysed locally, where the flow table spans files).
The cluster's workers need ``wiredissect`` installed and the capture paths readable.

Dask is an optional extra: ``pip install 'wiredissect[dask]'``.
"""

from __future__ import annotations

from typing import Any

from dissect.errors import DissectError
from dissect.output.writers import MemoryCollector
from dissect.protocols.tls import KeyLog
from dissect.records import TABLES
from dissect.run.core import Paths, RunResult, capture_files, dissect_files
from dissect.run.filters import Filters
from dissect.transport.limits import Limits


def _one_file(path: str, limits: Limits, filters: Filters,
              keylog: KeyLog | None) -> tuple[RunResult, dict[str, list[tuple]]]:
    """The task: the run core over one file; its result and its rows."""
    collector = MemoryCollector()
    return dissect_files([path], [collector], filters=filters, limits=limits, keylog=keylog), collector.rows


def _renumber(rows: dict[str, list[tuple]], offset: int) -> dict[str, list[tuple]]:
    if not offset:
        return rows
    return {t: [r._replace(session_id=r[0] + offset) for r in rs] for t, rs in rows.items()}  # type: ignore[attr-defined]


def run_dask(paths: Paths, address: Any, *, filters: Filters | None = None,
             limits: Limits | None = None, keylog: KeyLog | None = None) -> tuple[RunResult, dict[str, list[tuple]]]:
    """Dissect the captures of ``paths`` on the cluster at ``address`` (a scheduler address or a
    ``distributed.Client``), one task per file. Returns the merged result and the rows by table."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise DissectError("--dask needs the dask extra: pip install 'wiredissect[dask]'") from None

    files = capture_files(paths)
    filters = filters or Filters()
    limits = limits or Limits()
    client = address if isinstance(address, Client) else Client(address)
    try:
        futures = [client.submit(_one_file, f, limits, filters, keylog, pure=False) for f in files]
        results = client.gather(futures)
    finally:
        if client is not address:
            client.close()
    rows: dict[str, list[tuple]] = {t: [] for t in TABLES}
    merged = RunResult()
    for res, res_rows in results:
        for table, rs in _renumber(res_rows, merged.sessions).items():
            rows[table].extend(rs)
        merged.merge_file(res)
    rows["sio_broadcasts"] = list(merged.broadcasts())
    return merged, rows
