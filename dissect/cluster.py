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

from .flows import Limits
from .records import TABLES
from .summary import SummaryBuilder


def _one_file(path: str, limits: Limits, filters: Any) -> dict[str, Any]:
    """The task: dissect one file, return everything the client needs to merge."""
    from .api import drive
    from .pipeline import Pipeline
    from .writers import MemoryCollector

    collector = MemoryCollector()
    summary = SummaryBuilder()
    pipe = Pipeline([filters.wrap(collector), filters.wrap(summary)], limits, filters.flow_filter())
    drive(pipe, [path])
    st = pipe.stats
    return {
        "rows": collector.rows,
        "sessions_created": pipe.flows.next_id - 1,
        "summary": summary,
        "files": st.files,
        "warnings": dict(st.warnings),
        "details": st.warning_details,
        "counters": dict(st.counters),
        "nanosecond": st.nanosecond,
    }


def _renumber(rows: dict[str, list[tuple]], offset: int) -> dict[str, list[tuple]]:
    if not offset:
        return rows
    return {t: [r._replace(session_id=r[0] + offset) for r in rs] for t, rs in rows.items()}  # type: ignore[attr-defined]


def run_on_dask(files: list[str], address: Any, limits: Limits | None = None,
                filters: Any = None) -> tuple[dict[str, list[tuple]], SummaryBuilder, dict[str, Any]]:
    """Dissect ``files`` on the cluster at ``address`` (a scheduler address or a
    ``distributed.Client``). Returns (rows by table, merged summary builder, reader statistics)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the optional extra
        from .errors import DissectError

        raise DissectError("--dask needs the dask extra: pip install 'wiredissect[dask]'") from None
    from .api import Filters

    filters = filters or Filters()
    limits = limits or Limits()
    client = address if isinstance(address, Client) else Client(address)
    try:
        futures = [client.submit(_one_file, f, limits, filters, pure=False) for f in files]
        results = client.gather(futures)
    finally:
        if client is not address:
            client.close()
    rows: dict[str, list[tuple]] = {t: [] for t in TABLES}
    summary = SummaryBuilder()
    stats: dict[str, Any] = {"files": [], "warnings": {}, "details": [], "counters": {}, "nanosecond": False}
    offset = 0
    for res in results:
        for table, rs in _renumber(res["rows"], offset).items():
            rows[table].extend(rs)
        offset += res["sessions_created"]
        summary.merge(res["summary"])
        stats["files"].extend(res["files"])
        for key in ("warnings", "counters"):
            for k, n in res[key].items():
                stats[key][k] = stats[key].get(k, 0) + n
        stats["details"].extend(res["details"])
        stats["nanosecond"] = stats["nanosecond"] or res["nanosecond"]
    return rows, summary, stats
