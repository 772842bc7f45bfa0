"""The HTML tables of report.html: the headline cards, handshake percentiles, sessions, the
drill-down of the busiest sessions, capture files and reader warnings, rows with anomalies. Every
traffic string goes through :func:`~dissect.report.html.text.esc`."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dissect.capture.ip import endpoint_text
from dissect.report.html.kinds import meaning
from dissect.report.html.sockets import chosen_sockets
from dissect.report.html.text import count_text, esc, ms_text, numeric, utc_text, value_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

MAX_ROWS = 200
TOP_SESSIONS = 20


# How a column of a row table is written: durations in ms to three significant digits, counts
# with thousands separators, times as UTC. Other columns as they are.
MS_COLUMNS = frozenset({"duration_ms", "ack_latency_ms", "tcp_handshake_ms", "spread_ms"})
COUNT_COLUMNS = frozenset({"payload_bytes", "wire_bytes", "frames", "recipients", "bytes_c2s", "bytes_s2c",
                           "packets_c2s", "packets_s2c", "lost_bytes", "retransmissions"})
TS_COLUMNS = frozenset({"ts", "ts_start", "ts_end", "ts_first", "ts_last", "ts_request", "ts_response",
                        "ts_connect", "ts_disconnect"})
# Wireshark's frame numbers: where to look in Wireshark (Go to packet, or `frame.number == N`)
FRAME_COLUMNS = frozenset({"frame", "frame_request", "frame_response", "frame_first"})
NUMBER_COLUMNS = MS_COLUMNS | COUNT_COLUMNS | FRAME_COLUMNS | frozenset({
    "session_id", "message_index", "frame_index", "ack_id", "status", "index", "count", "tcp_stream",
    "broadcast_index"})
"""Columns right-aligned and never wrapped (numbers and times)."""


def cell_text(column: str, v: Any) -> str:
    """A value of ``column`` as the tables show it (see :data:`MS_COLUMNS`, :data:`COUNT_COLUMNS`,
    :data:`TS_COLUMNS`)."""
    if column in MS_COLUMNS:
        return ms_text(v)
    if column in COUNT_COLUMNS:
        return count_text(v)
    if column in TS_COLUMNS:
        t = numeric(pd.Series([v]))[0]
        return utc_text(None if np.isnan(t) else float(t))
    if column in FRAME_COLUMNS:
        f = numeric(pd.Series([v]))[0]
        return "" if np.isnan(f) else f"#{int(f)}"
    return value_text(v)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "",
           numbers: Collection[int] = ()) -> str:
    """An HTML table; the columns at the indexes ``numbers`` right-aligned and never wrapped
    (class ``n``), the others wrap at spaces (long tokens anywhere)."""
    head = "".join(f"<th{' class=n' if i in numbers else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(_cell(v, i in numbers) for i, v in enumerate(r)) + "</tr>" for r in rows)
    c = f' class="{esc(cls)}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


LONG_TOKEN = 24
"""A cell with a word longer than this (a path, a sid, a preview without spaces) may break it
anywhere (class ``t``, at least 14em wide); shorter words never break."""


def _cell(v: Any, number: bool) -> str:
    text = value_text(v)
    if number:
        return f"<td class=n>{esc(text)}</td>"
    if any(len(w) > LONG_TOKEN for w in text.split()):
        # a long token breaks after a path separator or an underscore first (<wbr>)
        return "<td class=t>" + re.sub(r"(?<=\w)([/_])(?=\w)", r"\1<wbr>", esc(text)) + "</td>"
    return f"<td>{esc(text)}</td>"


def _df_table(df: pd.DataFrame, columns: Sequence[str]) -> str:
    cols = [c for c in columns if c in df.columns]
    rows = [[cell_text(c, v) for c, v in zip(cols, rec, strict=False)]
            for rec in df[cols].itertuples(index=False, name=None)]
    return _table(cols, rows, numbers={i for i, c in enumerate(cols) if c in NUMBER_COLUMNS or c in TS_COLUMNS})


def cards(summary: dict[str, Any]) -> str:
    """The headline counts of the summary as cards (anomalies and reader warnings red when any)."""
    t = summary.get("totals") or {}
    anom = (summary.get("anomalies") or {}).get("total", 0)
    warn = (summary.get("warnings") or {}).get("total", 0)
    items = [
        ("files", t.get("files", 0)),
        ("packets", t.get("packets", 0)),
        ("sessions", t.get("sessions", 0)),
        ("handshakes", t.get("handshakes", 0)),
        ("http exchanges", t.get("http", 0)),
        ("ws frames", t.get("ws_frames", 0)),
        ("ws messages", t.get("ws_messages", 0)),
        ("sio packets", t.get("sio_packets", 0)),
        ("anomalies", anom),
        ("reader warnings", warn),
    ]
    parts = []
    for label, v in items:
        bad = " bad" if label in ("anomalies", "reader warnings") and v else ""
        parts.append(
            f'<div class="card{bad}"><div class="v">{int(v or 0):,}</div><div class="l">{esc(label)}</div></div>'
        )
    return '<div class="cards">' + "".join(parts) + "</div>"


def handshake_table(summary: dict[str, Any]) -> str:
    """Handshake count, failures and duration percentiles per layer."""
    rows = []
    for layer, h in (summary.get("handshakes") or {}).items():
        if not h.get("count"):
            continue
        d = h.get("duration_ms") or {}
        rows.append([layer, count_text(h.get("count")), count_text(h.get("failed")),
                     *(ms_text(d.get(p)) for p in ("p50", "p90", "p99", "max"))])
    if not rows:
        return "<p>No handshakes.</p>"
    return _table(["layer", "count", "failed", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows,
                  numbers=range(1, 7))


def _pair(a: Any, b: Any) -> str:
    """Two counts, client to server then server to client."""
    return f"{count_text(a)} / {count_text(b)}"


def _endpoint(ip: Any, port: Any) -> str:
    p = numeric(pd.Series([port]))[0]
    return endpoint_text(value_text(ip), None if np.isnan(p) else int(p))


def sessions_section(a: Analysis, max_rows: int) -> str:
    """The sessions with the most packets (at most ``max_rows``), one row each."""
    s = a.sessions
    if not len(s):
        return "<p>No sessions.</p>"
    pk = numeric(s["packets_c2s"]) + numeric(s["packets_s2c"])
    order = np.argsort(-np.nan_to_num(pk), kind="stable")
    shown = s.iloc[order[:max_rows]]
    note = ""
    if len(s) > max_rows:
        note = f"<p class=note>The {max_rows} sessions with the most packets, of {len(s):,}.</p>"
    rows = []
    for r in shown.to_dict("records"):
        t0 = numeric(pd.Series([r.get("ts_first")]))[0]
        t1 = numeric(pd.Series([r.get("ts_last")]))[0]
        rows.append(
            [
                r.get("session_id"),
                r.get("transport"),
                _endpoint(r.get("client_ip"), r.get("client_port"))
                + (" (inferred)" if r.get("client_inferred") is True else ""),
                _endpoint(r.get("server_ip"), r.get("server_port")),
                r.get("app_protocol"),
                utc_text(t0),
                "" if np.isnan(t0) or np.isnan(t1) else f"{t1 - t0:,.3f}",
                _pair(r.get("packets_c2s"), r.get("packets_s2c")),
                _pair(r.get("bytes_c2s"), r.get("bytes_s2c")),
                ms_text(r.get("tcp_handshake_ms")),
                count_text(r.get("retransmissions")),
                count_text(r.get("lost_bytes")),
                r.get("close"),
                r.get("anomaly"),
                r.get("source_file"),
            ]
        )
    headers = [
        "session",
        "transport",
        "client",
        "server",
        "app protocol",
        "first packet (UTC)",
        "duration s",
        "packets c2s / s2c",
        "bytes c2s / s2c",
        "tcp handshake ms",
        "retrans.",
        "lost bytes",
        "close",
        "anomaly",
        "file",
    ]
    if "source_file" in s.columns and s["source_file"].nunique(dropna=False) <= 1:
        # one capture file: the table above names it
        headers.pop()
        rows = [r[:-1] for r in rows]
    return note + _table(headers, rows, cls="sessions", numbers={0, 5, 6, 7, 8, 9, 10, 11})


def drilldown_section(a: Analysis, top: int) -> str:
    """The ``top`` sessions by messages, each a ``<details>`` with its handshakes, HTTP and first
    messages."""
    counts: pd.Series = pd.Series(dtype="int64")
    if len(a.ws_messages):
        counts = a.ws_messages.groupby("session_id").size()
    elif len(a.sio_packets):
        counts = a.sio_packets.groupby("session_id").size()
    elif len(a.http):
        counts = a.http.groupby("session_id").size()
    if not len(counts):
        return "<p>No sessions with messages.</p>"
    counts = counts.sort_values(ascending=False, kind="stable").head(top)
    sessions = a.sessions.set_index("session_id") if len(a.sessions) else None
    parts = []
    for sid, n in counts.items():
        head = f"session {esc(sid)}: {int(n):,} messages"
        if sessions is not None and sid in sessions.index:
            r = sessions.loc[sid]
            if isinstance(r, pd.DataFrame):
                r = r.iloc[0]
            head += (
                f" &mdash; {esc(_endpoint(r.get('client_ip'), r.get('client_port')))} &rarr; "
                f"{esc(_endpoint(r.get('server_ip'), r.get('server_port')))} "
                f"({esc(r.get('app_protocol'))}, close {esc(r.get('close'))}"
                + (f", tcp.stream {int(r.get('tcp_stream'))}, first packet #{int(r.get('frame_first'))}"
                   if pd.notna(r.get("tcp_stream")) and pd.notna(r.get("frame_first")) else "")
                + ")"
            )
        body = []
        hs = a.handshakes[a.handshakes["session_id"] == sid]
        if len(hs):
            body.append(
                "<h4>Handshakes</h4>"
                + _df_table(
                    hs,
                    ["layer", "ts_start", "duration_ms", "ok", "transport", "detail"],
                )
            )
        ht = a.http[a.http["session_id"] == sid].head(20)
        if len(ht):
            body.append(
                "<h4>HTTP</h4>"
                + _df_table(
                    ht,
                    ["ts_request", "frame_request", "frame_response", "duration_ms", "method", "target", "host",
                     "status", "upgrade"],
                )
            )
        ms = a.ws_messages[a.ws_messages["session_id"] == sid].head(20)
        if len(ms):
            body.append(
                "<h4>First WebSocket messages</h4>"
                + _df_table(
                    ms,
                    [
                        "message_index",
                        "ts_first",
                        "direction",
                        "opcode_name",
                        "frames",
                        "payload_bytes",
                        "text_preview",
                        "anomaly",
                    ],
                )
            )
        sp = a.sio_packets[a.sio_packets["session_id"] == sid].head(20)
        if len(sp):
            body.append(
                "<h4>First Engine.IO / Socket.IO packets</h4>"
                + _df_table(
                    sp,
                    [
                        "ts",
                        "frame",
                        "direction",
                        "transport",
                        "eio_type",
                        "sio_type",
                        "namespace",
                        "event",
                        "ack_id",
                        "ack_latency_ms",
                        "anomaly",
                    ],
                )
            )
        parts.append(f"<details><summary>{head}</summary>{''.join(body)}</details>")
    return "".join(parts)


def files_section(summary: dict[str, Any]) -> str:
    """The capture files and the reader's warnings."""
    files = summary.get("files") or []
    out = ""
    if files:
        out += _table(
            ["file", "packets", "bytes", "link types", "sessions", "first packet", "last packet"],
            [
                [
                    f.get("path"),
                    count_text(f.get("packets")),
                    count_text(f.get("bytes")),
                    ", ".join(str(x) for x in f.get("link_types") or []),
                    count_text(f.get("sessions")),
                    utc_text(f.get("ts_first")),
                    utc_text(f.get("ts_last")),
                ]
                for f in files
            ],
            numbers={1, 2, 4, 5, 6},
        )
    warn = (summary.get("warnings") or {}).get("by_kind") or {}
    if warn:
        out += "<h3>Reader warnings</h3>" + _table(
            ["kind", "count", "meaning", "details"],
            [[k, count_text(w.get("count")), meaning(k), "; ".join(str(d) for d in w.get("details") or [])]
             for k, w in warn.items()],
            numbers={1},
        )
    return out or "<p>No capture file information.</p>"


def anomaly_kinds(summary: dict[str, Any]) -> str:
    """Anomalies by kind and table, with what each kind means (:mod:`~dissect.report.html.kinds`)."""
    by_table = (summary.get("anomalies") or {}).get("by_table") or {}
    rows = sorted(((kind, table, int(n)) for table, counts in by_table.items() for kind, n in counts.items()),
                  key=lambda r: (-r[2], r[0], r[1]))
    if not rows:
        return "<p>No anomalies.</p>"
    return _table(["kind", "table", "count", "meaning"],
                  [[k, t, count_text(n), meaning(k)] for k, t, n in rows], numbers={2})


def anomaly_rows(a: Analysis, limit: int = 50) -> str:
    """Up to ``limit`` rows with an anomaly from each table (in a ``<details>``): where each is
    and its anomaly cell as written (the kinds with their details)."""
    rows = []
    for table, key, frame in (
        ("sessions", None, "frame_first"),
        ("http", None, "frame_request"),
        ("ws_frames", "frame_index", "frame"),
        ("ws_messages", "message_index", None),
        ("sio_packets", None, "frame"),
        ("sio_sockets", "socket_sid", None),
    ):
        df = a.table(table)
        if not len(df) or "anomaly" not in df.columns:
            continue
        bad = df[df["anomaly"].fillna("").astype(str) != ""]
        for rec in bad.head(limit).itertuples(index=False):
            r = rec._asdict()
            at = r.get(frame) if frame else None
            rows.append([table, r["session_id"], r.get(key) if key else "",
                         f"#{int(at)}" if at is not None and pd.notna(at) else "", r["anomaly"]])
    if not rows:
        return ""
    return (f"<details><summary>The rows (at most {limit} a table; frame: Wireshark's number of the packet "
            "that completed the row)</summary>"
            + _table(["table", "session", "index", "frame", "anomaly"], rows, numbers={1, 2, 3}) + "</details>")


BROADCAST_COLUMNS = ("broadcast_index", "namespace", "event", "ts_first", "spread_ms", "recipients", "payload_bytes")


def _socket_row(r: Mapping[Any, Any]) -> list[Any]:
    """A row of the sockets table: a refused CONNECT says so, recovery is yes (with the events
    replayed) or no."""
    recovered = r.get("recovered")
    recovery = ""
    if recovered is not None and recovered is not pd.NA and recovered == recovered:
        recovery = "yes" if recovered is True or str(recovered).lower() == "true" else "no"
        replayed = count_text(r.get("replayed_events"))
        if replayed and recovery == "yes":
            recovery += f" ({replayed} replayed)"
    transport = value_text(r.get("transport"))
    version = count_text(r.get("eio_version"))
    reason = r.get("disconnect_reason")
    if r.get("connected") is False or str(r.get("connected")).lower() == "false":
        reason = "refused"
    return [
        r.get("session_id"), r.get("namespace"), r.get("socket_sid"), r.get("eio_sid"),
        f"{transport}, v{version}" if version else transport, cell_text("ts_connect", r.get("ts_connect")),
        ms_text(r.get("duration_ms")), reason, r.get("disconnect_by"), _pair(r.get("events_c2s"), r.get("events_s2c")),
        count_text(r.get("acks_unanswered")), count_text(r.get("pings")), ms_text(r.get("max_pong_delay_ms")),
        recovery, r.get("anomaly"),
    ]


def sockets_section(a: Analysis, max_rows: int) -> str:
    """The Socket.IO sockets, one row each (at most ``max_rows``: the troubled ones first, then an
    even sample of the others, in connect order: :func:`~dissect.report.html.sockets.chosen_sockets`),
    and the broadcasts (the first ``max_rows``); empty without sockets or broadcasts."""
    socks, bc = a.sio_sockets, a.sio_broadcasts
    if not len(socks) and not len(bc):
        return ""
    out = ""
    if len(socks):
        shown = chosen_sockets(socks, max_rows)
        if len(socks) > len(shown):
            out += (f"<p class=note>{len(shown):,} of {len(socks):,} sockets: every one that ended in a ping "
                    "timeout or a transport error, was refused, failed to recover or has an anomaly, then an "
                    "even sample of the others (summary.json counts them all).</p>")
        out += _table(
            ["session", "namespace", "socket sid", "Engine.IO sid", "transport, EIO", "connected (UTC)",
             "lived ms", "why it ended", "by", "events c2s / s2c", "acks without reply", "pings", "worst pong ms",
             "recovered", "anomaly"],
            [_socket_row(r) for r in shown.to_dict("records")], cls="sockets", numbers={0, 5, 6, 9, 10, 11, 12})
    if len(bc):
        out += "<h3>Broadcasts</h3>"
        if len(bc) > max_rows:
            out += f"<p class=note>The first {max_rows:,} broadcasts of {len(bc):,}.</p>"
        out += _df_table(bc.sort_values("ts_first", kind="stable").head(max_rows), BROADCAST_COLUMNS)
    else:
        out += "<p>No broadcasts (no server event sent alike to several sockets).</p>"
    return out


def tls_section(a: Analysis, summary: dict[str, Any]) -> str:
    """TLS sessions by version, decrypted or not, and why not (summary.json's ``tls``); empty
    without TLS."""
    tls = summary.get("tls") or {}
    if not tls.get("sessions"):
        return ""
    s = a.sessions
    rows = []
    if len(s) and "tls_version" in s.columns:
        version = s["tls_version"].astype(object).fillna("").astype(str)
        decrypted = s["tls_decrypted"].map(lambda v: v is True or v == 1 or v == "true")
        for v in sorted(set(version) - {""}):
            mine = version == v
            n = int(mine.sum())
            d = int((mine & decrypted).sum())
            rows.append([v, count_text(n), count_text(d), count_text(n - d)])
    else:  # the tables were not read: the totals only
        for v, n in (tls.get("by_version") or {}).items():
            rows.append([v, count_text(n), "", ""])
    out = _table(["version", "sessions", "decrypted", "not decrypted"], rows, numbers={1, 2, 3})
    why = tls.get("not_decrypted_by_reason") or {}
    if why:
        out += "<h3>Why not decrypted</h3>" + _table(
            ["reason", "handshakes"], [[k, count_text(n)] for k, n in why.items()], numbers={1})
    if tls.get("not_decrypted"):
        out += ("<p class=note>Give the key log with <code>--tls-keylog FILE</code> (SSLKEYLOGFILE format) "
                "to decrypt.</p>")
    return out
