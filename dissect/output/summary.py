"""summary.json: headline figures of an analysis, built while the rows stream past.

:class:`SummaryBuilder` is fed row batches (the NamedTuples of :mod:`dissect.records`, timestamps in
integer nanoseconds) as the pipeline drains them, and never keeps a table: it keeps counters and
bounded distributions. :func:`from_analysis` computes the same dict from the DataFrames of an
:class:`~dissect.output.tables.Analysis` (a report loaded from disk); both paths go through the same code,
so they agree.

Memory bounds: distributions and traffic-keyed counters are bounded (:mod:`dissect.output.distribution`);
anomaly tags are counted by kind (:mod:`dissect.output.anomalies`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dissect.output.anomalies import anomaly_kind, split_anomalies
from dissect.output.batch_counts import ColumnCounts, Figures, FormattedCounts, RowColumns, RowCounts
from dissect.output.broadcasts import FanoutCandidates, FanoutRows
from dissect.output.distribution import (
    COUNTER_LIMIT,
    EXACT_LIMIT,
    OTHER,
    CappedCounter,
    Distribution,
    cell_key,
    count_cells,
    json_float,
    to_number,
)
from dissect.records import TABLES

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

__all__ = [
    "ANOMALY_TABLES",
    "COUNTER_LIMIT",
    "EXACT_LIMIT",
    "LAYERS",
    "MAX_WARNING_DETAILS",
    "OTHER",
    "PROTOCOLS",
    "SCHEMA_VERSION",
    "TOP_EVENTS",
    "CappedCounter",
    "Distribution",
    "SummaryBuilder",
    "anomaly_kind",
    "from_analysis",
    "split_anomalies",
    "summary_of",
    "to_number",
]

TOP_EVENTS = 50
MAX_WARNING_DETAILS = 5
LAYERS = ("tcp", "tls", "websocket", "engineio", "socketio")
PROTOCOLS = ("tcp", "udp", "http", "websocket", "engineio", "socketio")
ANOMALY_TABLES = ("sessions", "http", "ws_frames", "ws_messages", "sio_packets", "sio_sockets")
SCHEMA_VERSION = 1
_TLS_NOT_DECRYPTED = re.compile(r"decrypted=(?:false|partly) \(([^)]*)\)")
# The figures of the tables with many rows, counted through ColumnCounts (their _count_<table>; the
# compiled core counts a batch of rows in one walk, batch_counts.RowCounts). ``anomaly`` is one.
FIGURES = {
    "ws_frames": Figures(combos=(("direction", "opcode_name"),), cells=("close_code", "anomaly"),
                         totals=("payload_len",), trues=("compressed",)),
    "ws_messages": Figures(combos=(("direction", "opcode_name"),), cells=("frames", "anomaly"),
                           totals=("wire_bytes", "payload_bytes"), trues=("compressed",), values=("payload_bytes",)),
    "sio_packets": Figures(combos=(("sio_type", "namespace", "event"),), cells=("eio_type", "transport", "anomaly"),
                           values=("ack_latency_ms",)),
}


def _int(x: Any) -> int:
    v = to_number(x)
    return 0 if v is None else int(v)


class _FileStats:
    __slots__ = ("path", "packets", "bytes", "link_types", "sessions", "ts_first", "ts_last")

    def __init__(self, path: str) -> None:
        self.path = path
        self.packets = 0
        self.bytes = 0
        self.link_types: dict[str, int] = {}
        self.sessions = 0
        self.ts_first: float | None = None
        self.ts_last: float | None = None


class SummaryBuilder:
    """Accumulates summary.json from row batches; see the module doc for the memory bounds.

    >>> b = SummaryBuilder()
    >>> b.add("ws_frames", outbox.drain().get("ws_frames", []))
    >>> b.result()["ws_frames"]["by_opcode"]
    """

    def __init__(self, exact_limit: int = EXACT_LIMIT, counter_limit: int = COUNTER_LIMIT) -> None:
        self._exact_limit = exact_limit
        self._counter_limit = counter_limit
        self.rows: dict[str, int] = {name: 0 for name in TABLES}
        self._files: dict[str, _FileStats] = {}
        # sessions
        self._proto_sessions = self._counter()
        self._proto_packets: dict[str, int] = {}
        self._proto_bytes: dict[str, int] = {}
        self._transport = self._counter()
        self._close = self._counter()
        self._client_inferred = 0
        self._retrans = 0
        self._ooo = 0
        self._lost = 0
        self._ts_first: float | None = None
        self._ts_last: float | None = None
        # handshakes
        # tls (sessions: version, decrypted or not; handshakes: why not)
        self._tls_version = self._counter()
        self._tls_decrypted = self._counter()
        self._tls_why_not = self._counter()
        self._hs_count = self._counter()
        self._hs_ok = self._counter()
        self._hs_cut = self._counter()  # ok empty: the capture ended before an answer could come
        self._hs_dur: dict[str, Distribution] = {}
        # http
        self._http_method = self._counter()
        self._http_status = self._counter()
        self._http_upgrade = self._counter()
        self._http_dur = Distribution(exact_limit)
        # ws frames
        self._fr_opcode = self._counter()
        self._fr_dir: dict[str, CappedCounter] = {}
        self._fr_close = self._counter()
        self._fr_payload = 0
        self._fr_compressed = 0
        # ws messages
        self._msg_opcode = self._counter()
        self._msg_dir: dict[str, CappedCounter] = {}
        self._msg_size = Distribution(exact_limit)
        self._msg_wire = 0
        self._msg_payload = 0
        self._msg_compressed = 0
        self._msg_fragmented = 0
        # sio packets
        self._eio_type = self._counter()
        self._sio_type = self._counter()
        self._sio_transport = self._counter()
        self._sio_ns = self._counter()
        self._events = self._counter()
        self._event_keys: dict[str, tuple[str, str]] = {}
        self._ack = Distribution(exact_limit)
        # sio sockets (the Socket.IO issue): why they ended, heartbeats, recoveries
        self._sock_reason = self._counter()
        self._sock_by = self._counter()
        self._sock_refused = 0
        self._sock_recovery = self._counter()  # recovered / not_recovered (recovery asked)
        self._sock_replayed = 0
        self._pong = Distribution(exact_limit)
        # sio broadcasts (the Socket.IO issue): candidates from sio_packets, fan-outs at the end
        self._fanout = FanoutCandidates()
        self._bc_recipients = Distribution(exact_limit)
        self._bc_spread = Distribution(exact_limit)
        self._bc_rows: FanoutRows | None = None  # made once, by broadcasts()
        # anomalies and warnings
        self._anom: dict[str, CappedCounter] = {}
        self._anom_rows = 0
        self._warn: dict[str, int] = {}
        self._warn_details: dict[str, list[str]] = {}

    def merge(self, other: SummaryBuilder) -> None:
        """Add what ``other`` counted (rows of other sessions, e.g. from another worker).

        Row-derived figures add up; reader warnings and file packet counts are not rows: each
        worker of ``--jobs`` reads every file, so the caller adds those once, not through here.
        """
        for name, mine in vars(self).items():
            theirs = getattr(other, name)
            if name in ("_exact_limit", "_counter_limit", "_warn", "_warn_details"):
                continue
            if name == "_ts_first":
                vals = [v for v in (mine, theirs) if v is not None]
                setattr(self, name, min(vals) if vals else None)
            elif name == "_ts_last":
                vals = [v for v in (mine, theirs) if v is not None]
                setattr(self, name, max(vals) if vals else None)
            elif isinstance(mine, (int, float)):
                setattr(self, name, mine + theirs)
            elif isinstance(mine, (CappedCounter, Distribution, FanoutCandidates)):
                mine.merge(theirs)
            elif name == "_files":
                for path, f in theirs.items():
                    mf = self._file(path)
                    mf.sessions += f.sessions
                    mf.packets += f.packets
                    mf.bytes += f.bytes
                    for lt, n in f.link_types.items():
                        mf.link_types[lt] = mf.link_types.get(lt, 0) + n
                    firsts = [v for v in (mf.ts_first, f.ts_first) if v is not None]
                    lasts = [v for v in (mf.ts_last, f.ts_last) if v is not None]
                    mf.ts_first = min(firsts) if firsts else None
                    mf.ts_last = max(lasts) if lasts else None
            elif isinstance(mine, dict):
                for k, v in theirs.items():
                    if k not in mine:
                        mine[k] = v
                    elif isinstance(v, int):
                        mine[k] += v
                    elif isinstance(v, (CappedCounter, Distribution)):
                        mine[k].merge(v)

    def _counter(self) -> CappedCounter:
        return CappedCounter(self._counter_limit)

    # -- input --------------------------------------------------------------------------------

    def add(self, table: str, rows: Iterable[tuple]) -> None:
        """Count a batch of rows of ``table`` (NamedTuples of :mod:`dissect.records`, ns times)."""
        if table not in TABLES:
            raise KeyError(f"no table {table!r}")
        if not isinstance(rows, (list, tuple)):
            rows = list(rows)
        if not rows:
            return
        fields = TABLES[table]._fields  # type: ignore[attr-defined]
        figures = FIGURES.get(table)
        counts = None if figures is None else RowCounts.count(fields, rows, figures)  # type: ignore[arg-type]
        if counts is None:
            self.add_columns(table, RowColumns(fields, rows), len(rows), ts_divisor=1e9)
            return
        self.rows[table] = self.rows.get(table, 0) + len(rows)
        getattr(self, f"_count_{table}")(counts, 1e9)
        self._add_anomalies(table, counts.cells("anomaly"))

    def direct_spec(self) -> dict[str, Any] | None:
        """The builder takes the figures of rows the compiled core made without tuples (dissect.pipeline)."""
        return {}

    def add_formatted(self, table: str, rows: int, csv: Any, figures: Any, candidates: Any) -> None:
        """Count a batch of ``rows`` rows of ``table`` the compiled core counted itself
        (``figures`` and ``candidates``: batch_counts.FormattedCounts); as :meth:`add` counts rows."""
        if not rows:
            return
        counts = FormattedCounts(figures, candidates)
        self.rows[table] = self.rows.get(table, 0) + rows
        getattr(self, f"_count_{table}")(counts, 1e9)
        self._add_anomalies(table, counts.cells("anomaly"))

    def add_columns(
        self, table: str, cols: Mapping[str, Sequence[Any]], n: int, ts_divisor: float = 1.0
    ) -> None:
        """Count ``n`` rows given column-wise; ts cells divided by ``ts_divisor`` are seconds."""
        self.rows[table] = self.rows.get(table, 0) + n
        if table in FIGURES:
            getattr(self, f"_count_{table}")(ColumnCounts(cols), ts_divisor)
        else:
            getattr(self, f"_add_{table}")(cols, ts_divisor)
        if "anomaly" in cols and table in ANOMALY_TABLES:
            self._add_anomalies(table, count_cells(cols["anomaly"]))

    def add_warning(self, kind: str, count: int = 1, detail: str | None = None) -> None:
        """A reader warning (truncated file, snaplen-cut packets, unknown link type, ...)."""
        self._warn[kind] = self._warn.get(kind, 0) + int(count)
        if detail is not None:
            details = self._warn_details.setdefault(kind, [])
            detail = str(detail)[:200]
            if detail not in details and len(details) < MAX_WARNING_DETAILS:
                details.append(detail)

    def add_file(
        self,
        path: str,
        packets: int | None,
        bytes: int | None,  # noqa: A002 - the contract's word
        link_types: Mapping[Any, int] | Iterable[Any] | None = None,
    ) -> None:
        """A capture file read: its packet and byte counts and link types (a mapping of link type
        name to packet count, or just the names)."""
        f = self._file(str(path))
        f.packets += int(packets or 0)
        f.bytes += int(bytes or 0)
        if isinstance(link_types, Mapping):
            for lt, n in link_types.items():
                f.link_types[str(lt)] = f.link_types.get(str(lt), 0) + int(n or 0)
        else:
            for lt in link_types or ():
                f.link_types.setdefault(str(lt), 0)

    def _file(self, path: str) -> _FileStats:
        f = self._files.get(path)
        if f is None:
            f = self._files[path] = _FileStats(path)
        return f

    # -- per table ----------------------------------------------------------------------------

    def _add_sessions(self, c: Mapping[str, Sequence[Any]], ts_divisor: float) -> None:
        protos = [cell_key(p) or "tcp" for p in c["app_protocol"]]
        self._proto_sessions.update(protos)
        pk = [_int(a) + _int(b) for a, b in zip(c["packets_c2s"], c["packets_s2c"], strict=False)]
        by = [_int(a) + _int(b) for a, b in zip(c["bytes_c2s"], c["bytes_s2c"], strict=False)]
        for p, np_, nb in zip(protos, pk, by, strict=False):
            self._proto_packets[p] = self._proto_packets.get(p, 0) + np_
            self._proto_bytes[p] = self._proto_bytes.get(p, 0) + nb
        if "tls_version" in c:
            versions = [cell_key(v) for v in c["tls_version"]]
            self._tls_version.update(v for v in versions if v)
            self._tls_decrypted.update(
                "decrypted" if d is True or d == 1 else "not_decrypted"
                for v, d in zip(versions, c["tls_decrypted"], strict=False) if v)
        self._transport.update(cell_key(t) for t in c["transport"])
        self._close.update(cell_key(x) or "none" for x in c["close"])
        self._client_inferred += sum(1 for x in c["client_inferred"] if x is True or x == 1)
        self._retrans += sum(int(v) for v in map(to_number, c["retransmissions"]) if v is not None)
        self._ooo += sum(int(v) for v in map(to_number, c["out_of_order"]) if v is not None)
        self._lost += sum(int(v) for v in map(to_number, c["lost_bytes"]) if v is not None)
        for src, t0, t1 in zip(c["source_file"], c["ts_first"], c["ts_last"], strict=False):
            f = self._file(cell_key(src))
            f.sessions += 1
            a = to_number(t0)
            b = to_number(t1)
            if a is not None:
                a /= ts_divisor
                f.ts_first = a if f.ts_first is None else min(f.ts_first, a)
                self._ts_first = a if self._ts_first is None else min(self._ts_first, a)
            if b is not None:
                b /= ts_divisor
                f.ts_last = b if f.ts_last is None else max(f.ts_last, b)
                self._ts_last = b if self._ts_last is None else max(self._ts_last, b)

    def _add_handshakes(self, c: Mapping[str, Sequence[Any]], ts_divisor: float) -> None:
        layers = [cell_key(x) for x in c["layer"]]
        self._hs_count.update(layers)
        by_layer: dict[str, list[Any]] = {}
        for layer, ok, dur in zip(layers, c["ok"], c["duration_ms"], strict=False):
            if ok is True or ok == 1:
                self._hs_ok.add(layer)
            elif ok is None or ok != ok:  # None (rows) or NaN (DataFrames)
                self._hs_cut.add(layer)
            by_layer.setdefault(layer, []).append(dur)
        if "tls" in by_layer:
            for layer, detail in zip(layers, c["detail"], strict=False):
                if layer == "tls":
                    m = _TLS_NOT_DECRYPTED.search(cell_key(detail))
                    if m:
                        self._tls_why_not.add(m.group(1))
        for layer, durs in by_layer.items():
            d = self._hs_dur.get(layer)
            if d is None:
                if len(self._hs_dur) >= self._counter_limit:
                    continue
                d = self._hs_dur[layer] = Distribution(self._exact_limit)
            d.extend(durs)

    def _add_http(self, c: Mapping[str, Sequence[Any]], ts_divisor: float) -> None:
        self._http_method.update(cell_key(x) for x in c["method"])
        self._http_status.update(cell_key(x) or "none" for x in c["status"])
        self._http_upgrade.update(cell_key(x).lower() for x in c["upgrade"] if cell_key(x))
        self._http_dur.extend(c["duration_ms"])

    def _by_direction(self, target: dict[str, CappedCounter], combos: Mapping[tuple[Any, ...], int]) -> CappedCounter:
        """Opcode names counted overall (returned) and per direction (into ``target``), from the
        counts of (direction, opcode_name)."""
        overall = self._counter()
        for (d, name), n in combos.items():
            dk, nk = cell_key(d), cell_key(name)
            counter = target.get(dk)
            if counter is None:
                counter = target[dk] = self._counter()
            counter.add(nk, n)
            overall.add(nk, n)
        return overall

    def _count_ws_frames(self, c: ColumnCounts, ts_divisor: float) -> None:
        self._fr_opcode.merge(self._by_direction(self._fr_dir, c.combos("direction", "opcode_name")))
        for raw, n in c.cells("close_code").items():
            if to_number(raw) is not None:
                self._fr_close.add(cell_key(raw), n)
        self._fr_payload += c.total("payload_len")
        self._fr_compressed += c.true("compressed")

    def _count_ws_messages(self, c: ColumnCounts, ts_divisor: float) -> None:
        self._msg_opcode.merge(self._by_direction(self._msg_dir, c.combos("direction", "opcode_name")))
        self._msg_size.add_finite(c.values("payload_bytes"))
        self._msg_wire += c.total("wire_bytes")
        self._msg_payload += c.total("payload_bytes")
        self._msg_compressed += c.true("compressed")
        self._msg_fragmented += sum(n for v, n in c.cells("frames").items() if (to_number(v) or 0) > 1)

    def _count_sio_packets(self, c: ColumnCounts, ts_divisor: float) -> None:
        self._eio_type.add_counts(c.cells("eio_type"))
        self._sio_transport.add_counts(c.cells("transport"))
        for (raw_t, ns, ev), n in c.combos("sio_type", "namespace", "event").items():
            t = cell_key(raw_t)
            if not t:
                continue
            self._sio_type.add(t, n)
            nsk = cell_key(ns) or "/"
            self._sio_ns.add(nsk, n)
            if t in ("EVENT", "BINARY_EVENT"):
                evk = cell_key(ev)
                key = f"{nsk}\x00{evk}"
                if key not in self._event_keys and len(self._event_keys) < self._counter_limit:
                    self._event_keys[key] = (nsk, evk)
                self._events.add(key if key in self._event_keys else OTHER, n)
        self._ack.add_finite(c.values("ack_latency_ms"))
        if ts_divisor == 1e9:  # rows of a run (ns times), not a report read back
            c.add_candidates(self._fanout)

    def broadcasts(self) -> FanoutRows:
        """The run's ``sio_broadcasts`` rows, from every server-to-client EVENT counted (after the
        workers' builders are merged); counted here too. Call once, at the end of a run."""
        if self._bc_rows is None:
            self._bc_rows = self._fanout.groups()
            self._fanout.clear()
            for chunk in self._bc_rows.chunks():
                self.add("sio_broadcasts", chunk)
        return self._bc_rows

    def _add_sio_broadcasts(self, c: Mapping[str, Sequence[Any]], ts_divisor: float) -> None:
        self._bc_recipients.extend(c["recipients"])
        self._bc_spread.extend(c["spread_ms"])

    def _add_sio_sockets(self, c: Mapping[str, Sequence[Any]], ts_divisor: float) -> None:
        self._sock_reason.update(cell_key(x) or "none" for x in c["disconnect_reason"])
        self._sock_by.update(cell_key(x) or "unknown" for x in c["disconnect_by"])
        self._sock_refused += sum(1 for x in c["connected"] if x is False or x == 0)
        self._sock_recovery.update(
            "recovered" if x is True or x == 1 else "not_recovered"
            for x in c["recovered"] if cell_key(x))
        self._sock_replayed += sum(int(v) for v in map(to_number, c["replayed_events"]) if v is not None)
        self._pong.extend(c["max_pong_delay_ms"])

    def _add_anomalies(self, table: str, cells: Mapping[Any, int]) -> None:
        """Anomaly tags counted by kind, from the counts of a batch's ``anomaly`` cells."""
        counter = self._anom.get(table)
        for cell, n in cells.items():
            tags = split_anomalies(cell)
            if not tags:
                continue
            self._anom_rows += n
            if counter is None:
                counter = self._anom[table] = self._counter()
            for tag in tags:
                counter.add(anomaly_kind(tag), n)

    # -- output -------------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        """summary.json as a dict: JSON-serialisable, stable key order, None for missing values."""
        files = [
            {
                "path": f.path,
                "packets": f.packets,
                "bytes": f.bytes,
                "link_types": {k: f.link_types[k] for k in sorted(f.link_types)},
                "sessions": f.sessions,
                "ts_first": json_float(f.ts_first, 9),
                "ts_last": json_float(f.ts_last, 9),
            }
            for f in self._files.values()
        ]
        totals: dict[str, Any] = {"files": len(files)}
        totals["packets"] = sum(f.packets for f in self._files.values())
        totals["bytes"] = sum(f.bytes for f in self._files.values())
        totals.update({name: self.rows.get(name, 0) for name in TABLES})

        proto_names = list(PROTOCOLS)
        proto_names += sorted(set(self._proto_sessions.counts) - set(PROTOCOLS))
        protocols = {
            p: {
                "sessions": self._proto_sessions.counts.get(p, 0),
                "packets": self._proto_packets.get(p, 0),
                "bytes": self._proto_bytes.get(p, 0),
            }
            for p in proto_names
        }

        layers = list(LAYERS)
        layers += sorted(set(self._hs_count.counts) - set(LAYERS))
        handshakes = {}
        for layer in layers:
            count = self._hs_count.counts.get(layer, 0)
            ok = self._hs_ok.counts.get(layer, 0)
            cut = self._hs_cut.counts.get(layer, 0)
            dist = self._hs_dur.get(layer) or Distribution(self._exact_limit)
            handshakes[layer] = {
                "count": count,
                "ok": ok,
                "failed": count - ok - cut,
                "capture_ended": cut,
                "duration_ms": dist.summary(),
            }

        events = [
            {"namespace": self._event_keys[k][0], "event": self._event_keys[k][1], "count": n}
            if k in self._event_keys
            else {"namespace": None, "event": OTHER, "count": n}
            for k, n in self._events.top(TOP_EVENTS)
        ]

        by_kind: dict[str, int] = {}
        by_table: dict[str, dict[str, int]] = {}
        for table in ANOMALY_TABLES:
            counter = self._anom.get(table)
            if counter is None or not counter.counts:
                continue
            by_table[table] = counter.sorted()
            for k, n in counter.counts.items():
                by_kind[k] = by_kind.get(k, 0) + n

        span = None
        if self._ts_first is not None and self._ts_last is not None:
            span = self._ts_last - self._ts_first

        return {
            "schema": SCHEMA_VERSION,
            "totals": totals,
            "capture": {
                "ts_first": json_float(self._ts_first, 9),
                "ts_last": json_float(self._ts_last, 9),
                "duration_s": json_float(span, 9),
            },
            "files": files,
            "protocols": protocols,
            "sessions": {
                "count": self.rows.get("sessions", 0),
                "by_transport": self._transport.sorted(),
                "by_close": self._close.sorted(),
                "client_inferred": self._client_inferred,
                "retransmissions": self._retrans,
                "out_of_order": self._ooo,
                "lost_bytes": self._lost,
            },
            "handshakes": handshakes,
            "tls": {
                "sessions": self._tls_version.total(),
                "by_version": self._tls_version.sorted(),
                "decrypted": self._tls_decrypted.counts.get("decrypted", 0),
                "not_decrypted": self._tls_decrypted.counts.get("not_decrypted", 0),
                "not_decrypted_by_reason": self._tls_why_not.sorted(),
            },
            "http": {
                "count": self.rows.get("http", 0),
                "by_method": self._http_method.sorted(),
                "by_status": self._http_status.sorted(),
                "by_upgrade": self._http_upgrade.sorted(),
                "duration_ms": self._http_dur.summary(),
            },
            "ws_frames": {
                "count": self.rows.get("ws_frames", 0),
                "by_opcode": self._fr_opcode.sorted(),
                "by_direction": {d: self._fr_dir[d].sorted() for d in sorted(self._fr_dir)},
                "by_close_code": self._fr_close.sorted(),
                "payload_bytes": self._fr_payload,
                "compressed": self._fr_compressed,
            },
            "ws_messages": {
                "count": self.rows.get("ws_messages", 0),
                "by_opcode": self._msg_opcode.sorted(),
                "by_direction": {d: self._msg_dir[d].sorted() for d in sorted(self._msg_dir)},
                "payload_bytes": {**self._msg_size.summary(3), "total": self._msg_payload},
                "wire_bytes": self._msg_wire,
                "compressed": self._msg_compressed,
                "fragmented": self._msg_fragmented,
            },
            "sio_packets": {
                "count": self.rows.get("sio_packets", 0),
                "by_transport": self._sio_transport.sorted(),
                "by_eio_type": self._eio_type.sorted(),
                "by_sio_type": self._sio_type.sorted(),
                "by_namespace": self._sio_ns.sorted(),
                "events_total": self._events.total(),
                "events": events,
                "ack_latency_ms": self._ack.summary(),
            },
            "sio_sockets": {
                "count": self.rows.get("sio_sockets", 0),
                "by_disconnect_reason": self._sock_reason.sorted(),
                "by_disconnect_by": self._sock_by.sorted(),
                "refused": self._sock_refused,
                "recovered": self._sock_recovery.counts.get("recovered", 0),
                "not_recovered": self._sock_recovery.counts.get("not_recovered", 0),
                "replayed_events": self._sock_replayed,
                "max_pong_delay_ms": self._pong.summary(),
            },
            "sio_broadcasts": {
                "count": self.rows.get("sio_broadcasts", 0),
                "recipients": self._bc_recipients.summary(),
                "spread_ms": self._bc_spread.summary(),
            },
            "anomalies": {
                "total": sum(by_kind.values()),
                "rows": self._anom_rows,
                "by_kind": {k: by_kind[k] for k in sorted(by_kind)},
                "by_table": by_table,
            },
            "warnings": {
                "total": sum(self._warn.values()),
                "by_kind": {
                    k: {"count": self._warn[k], "details": list(self._warn_details.get(k, []))}
                    for k in sorted(self._warn)
                },
            },
        }


def _column(df: Any, name: str) -> list[Any]:
    """A DataFrame column as a list with None for missing values (absent column: all None)."""
    if name not in df.columns:
        return [None] * len(df)
    s = df[name]
    return list(s.astype(object).where(s.notna(), None).tolist())


def from_analysis(a: Analysis, exact_limit: int = EXACT_LIMIT) -> dict[str, Any]:
    """summary.json computed from the DataFrames of ``a`` (timestamps in epoch seconds).

    File packet/byte counts and reader warnings are not in the tables: they are taken from
    ``a.summary`` when it has them (a report loaded with ``Analysis.from_dir``).
    """
    b = SummaryBuilder(exact_limit=exact_limit)
    old = a.summary if isinstance(a.summary, dict) else {}
    for f in old.get("files") or []:
        if isinstance(f, dict) and "path" in f:
            b.add_file(f["path"], f.get("packets"), f.get("bytes"), f.get("link_types"))
    for kind, w in ((old.get("warnings") or {}).get("by_kind") or {}).items():
        if isinstance(w, dict):
            details = w.get("details") or []
            b.add_warning(kind, int(w.get("count") or 0), details[0] if details else None)
            for d in details[1:]:
                b.add_warning(kind, 0, d)
    for name in TABLES:
        df = a.table(name)
        if len(df) == 0:
            continue
        fields = TABLES[name]._fields  # type: ignore[attr-defined]
        cols = {f: _column(df, f) for f in fields}
        b.add_columns(name, cols, len(df), ts_divisor=1.0)
    result = b.result()
    # Keys the pipeline adds beside the builder's (decode counters, timestamp precision) survive.
    for key, value in old.items():
        if key not in result:
            result[key] = value
    return result


def summary_of(a: Analysis) -> dict[str, Any]:
    """``a.summary`` when it is a full summary.json (has the current schema), else computed."""
    if isinstance(a.summary, dict) and a.summary.get("schema") == SCHEMA_VERSION:
        return a.summary
    return from_analysis(a)
