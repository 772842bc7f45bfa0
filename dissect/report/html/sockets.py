"""The Socket.IO plots of report.html: each socket's life coloured by why it ended
(``sio_sockets``), and the broadcasts' fan-out (``sio_broadcasts``).

Both stay bounded: the timeline draws at most :data:`MAX_SOCKETS` sockets (:func:`chosen_sockets`:
every troubled socket first, then an even sample of the others over the capture, the legend
counting them all) and the fan-out plot at most ``max_points`` broadcasts (an even sample)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dissect.report.html.plot import Figure, trace
from dissect.report.html.text import numeric, plot_text, utc_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

MAX_SOCKETS = 300
"""Sockets drawn in the timeline (:func:`chosen_sockets`); the title says how many there are."""

REASON_COLORS = {
    "client namespace disconnect": "#4c78a8",
    "server namespace disconnect": "#72b7b2",
    "transport close": "#f58518",
    "transport error": "#e45756",
    "ping timeout": "#b40426",
    "server shutting down": "#9d755d",
    "capture ended": "#bab0ac",
    "refused": "#222222",
}
_OTHER_COLOR = "#b279a2"

TROUBLE_REASONS = frozenset({"ping timeout", "transport error", "refused"})
"""Reasons that mark a socket as troubled (:func:`troubled`): drawn and listed first."""


def _value(x: Any) -> Any:
    """A cell, None when missing (None, NaN, pd.NA, '')."""
    try:
        return None if x is None or bool(x != x) or (isinstance(x, str) and not x) else x
    except TypeError:  # pd.NA
        return None


def _false(v: Any) -> bool:
    """A boolean cell that is False (bool, numpy bool, 0 or 'false' as a CSV may give it)."""
    if isinstance(v, str):
        return v.strip().lower() == "false"
    return v is False or (isinstance(v, (np.bool_, int, float)) and not isinstance(v, bool) and v == 0)


def reasons(socks: pd.DataFrame) -> pd.Series:
    """Why each socket ended as the timeline names it: ``refused`` when its CONNECT was refused,
    else ``disconnect_reason`` (``unknown`` when missing)."""
    reason = socks["disconnect_reason"].astype(object).where(socks["disconnect_reason"].notna(), "unknown")
    reason = reason.map(lambda r: r if isinstance(r, str) and r else "unknown")
    refused = socks["connected"].map(_false).astype(bool)
    return reason.where(~refused, "refused")


def troubled(socks: pd.DataFrame, reason: pd.Series | None = None) -> np.ndarray:
    """Sockets worth a look first: ended by a ping timeout or a transport error, refused, a
    recovery that failed, or an anomaly on the row."""
    reason = reasons(socks) if reason is None else reason
    bad = np.array(reason.isin(TROUBLE_REASONS), dtype=bool)
    if "recovered" in socks.columns:
        bad |= np.array(socks["recovered"].map(_false), dtype=bool)
    if "anomaly" in socks.columns:
        bad |= np.array(socks["anomaly"].map(lambda v: _value(v) is not None), dtype=bool)
    return bad


def chosen_sockets(socks: pd.DataFrame, limit: int) -> pd.DataFrame:
    """At most ``limit`` sockets, by connect time: every troubled one (:func:`troubled`, the
    earliest when there are more), then the others evenly spaced over the rest, so that the
    choice spans the whole capture."""
    socks = socks.sort_values(["ts_connect", "session_id"], kind="stable")
    if len(socks) <= limit:
        return socks
    bad = troubled(socks)
    take = np.flatnonzero(bad)[:limit]
    others = np.flatnonzero(~bad)
    room = limit - len(take)
    if room > 0 and len(others):
        picks = np.unique(np.linspace(0, len(others) - 1, num=min(room, len(others))).round().astype(int))
        take = np.concatenate([take, others[picks]])
    return socks.iloc[np.sort(take)]


def _hover(row: Any, reason: str, open_at_end: bool) -> str:
    by = _value(row.disconnect_by)
    pong = _value(row.max_pong_delay_ms)
    recovered = _value(row.recovered)
    replayed = _value(row.replayed_events)
    duration = _value(row.duration_ms)
    anomaly = _value(row.anomaly)
    parts = [
        f"{row.namespace} socket {_value(row.socket_sid) or '-'}, Engine.IO sid {_value(row.eio_sid) or '-'}, "
        f"session {row.session_id}",
        (f"{reason}" + (f" by {by}" if by else "")
         + (" (still open when the capture ended)" if open_at_end else "")
         + (f" after {float(duration):,.1f} ms" if duration is not None else "")),
        f"events {row.events_c2s} c2s, {row.events_s2c} s2c; {row.acks_unanswered} acks unanswered",
        f"pings {row.pings}" + (f", worst pong {float(pong):.3f} ms" if pong is not None else ""),
    ]
    if recovered is not None:
        parts.append(f"recovered: {str(bool(recovered)).lower()}"
                     + (f", {int(replayed)} events replayed" if replayed is not None else ""))
    if anomaly is not None:
        parts.append(f"anomaly: {anomaly}")
    return "<br>".join(plot_text(p, 160) for p in parts)


def socket_timeline(a: Analysis, base_layout: dict[str, Any],
                    limit: int = MAX_SOCKETS) -> tuple[str, str, Figure] | None:
    """One line per socket from its CONNECT reply to its end (the capture's end when it was still
    open; a refused CONNECT is a point), coloured by why it ended, for at most ``limit`` sockets
    (:func:`chosen_sockets`); the legend counts every socket of each reason."""
    socks: pd.DataFrame = a.sio_sockets
    if not len(socks):
        return None
    total = len(socks)
    all_counts = {str(r): int(n) for r, n in reasons(socks).value_counts().items()}
    socks = chosen_sockets(socks, limit)
    reason = reasons(socks).to_numpy()
    end = (a.summary.get("capture") or {}).get("ts_last")
    starts = numeric(socks["ts_connect"])
    stops = numeric(socks["ts_disconnect"])
    known = np.concatenate([starts, stops])
    known = known[~np.isnan(known)]
    if isinstance(end, (int, float)) and end == end:
        fallback = float(end)
    else:
        fallback = float(known.max()) if len(known) else float("nan")
    open_at_end = np.isnan(stops) & (reason != "refused")
    stops = np.where(np.isnan(stops), np.where(reason == "refused", starts, fallback), stops)
    by_reason: dict[str, dict[str, list[Any]]] = {}
    labels = []
    for i, row in enumerate(socks.itertuples(index=False)):
        sid = _value(row.socket_sid) or _value(row.eio_sid) or ""
        label = f"{i + 1}. " + plot_text(f"{row.namespace} {sid} #{row.session_id}", 60)  # unique: numbered
        labels.append(label)
        cell = by_reason.setdefault(str(reason[i]), {"x": [], "y": [], "text": []})
        hover = _hover(row, str(reason[i]), bool(open_at_end[i]))
        cell["x"] += [utc_text(starts[i], 6), utc_text(stops[i], 6), None]
        cell["y"] += [label, label, None]
        cell["text"] += [hover, hover, None]
    # rows of the drawn sockets about 22 px apart (up to 1,600 px): lines thin enough not to overlap
    height = max(300, min(1600, 130 + 22 * len(labels)))
    width = float(np.clip(0.6 * (height - 130) / max(1, len(labels)), 2, 6))
    fig = Figure(base_layout)
    for r in sorted(all_counts, key=lambda r: (r not in REASON_COLORS, r)):
        cell = by_reason.get(r, {"x": [], "y": [], "text": []})
        fig.add_trace(trace(
            "scatter", x=cell["x"], y=cell["y"], text=cell["text"], mode="lines+markers",
            name=plot_text(f"{r} ({all_counts[r]:,})", 60), legendgroup=plot_text(r, 40),
            line={"color": REASON_COLORS.get(r, _OTHER_COLOR), "width": round(width, 1)},
            marker={"size": 9, "symbol": "line-ns-open"}, connectgaps=False,
            hovertemplate="%{text}<br>%{x}<extra></extra>",
        ))
    fig.update_layout(
        height=height,
        xaxis={"title": "time (UTC)", "type": "date"},
        yaxis={"title": "", "type": "category", "categoryorder": "array", "categoryarray": labels[::-1],
               "automargin": True},
    )
    title = "Socket.IO sockets: life and why each ended"
    if total > len(labels):
        title += (f" ({len(labels):,} of {total:,} drawn: the troubled first, then an even sample; "
                  "the legend counts all)")
    return ("sio-sockets", title, fig)


def fanout(a: Analysis, base_layout: dict[str, Any], max_points: int) -> tuple[str, str, Figure] | None:
    """Each broadcast at its first packet: how many sockets got it, coloured by how long the
    server took to reach them all; at most ``max_points`` broadcasts (evenly spaced over time)."""
    bc: pd.DataFrame = a.sio_broadcasts
    if not len(bc):
        return None
    total = len(bc)
    bc = bc.sort_values("ts_first", kind="stable")
    if total > max_points:
        # an even sample over time, and always the broadcasts that reached the fewest and the most
        # sockets and the slowest one
        recipients, spread = numeric(bc["recipients"]), numeric(bc["spread_ms"])
        extremes = [int(np.nanargmin(recipients)), int(np.nanargmax(recipients)), int(np.nanargmax(spread))] \
            if not (np.isnan(recipients).all() or np.isnan(spread).all()) else []
        even = np.linspace(0, total - 1, num=max(1, max_points - len(extremes))).round().astype(int)
        bc = bc.iloc[np.unique(np.concatenate([even, np.asarray(extremes, dtype=int)]))]
    t = numeric(bc["ts_first"])
    t1 = numeric(bc["ts_last"])
    spread = np.nan_to_num(numeric(bc["spread_ms"]), nan=0.0)
    recipients = np.nan_to_num(numeric(bc["recipients"]), nan=0.0).astype(int)
    size = numeric(bc["payload_bytes"])
    texts = [
        plot_text(f"{ns} {ev}: {n:,} sockets within {s:.3f} ms", 200)
        + "<br>" + plot_text(f"{'' if b != b else f'{int(b):,} payload bytes, '}"
                             f"last packet {utc_text(last, 6)}", 200)
        for ns, ev, n, s, b, last in zip(bc["namespace"], bc["event"], recipients, spread, size, t1, strict=True)
    ]
    fig = Figure(base_layout)
    fig.add_trace(trace(
        "scatter", x=[utc_text(x, 6) for x in t], y=[int(n) for n in recipients], mode="markers",
        name="broadcast", text=texts, hovertemplate="%{text}<br>first packet %{x}<extra></extra>",
        marker={"size": 9 if len(bc) <= 500 else 5, "color": [round(float(s), 6) for s in spread],
                "colorscale": "Viridis", "showscale": True, "colorbar": {"title": {"text": "spread (ms)"}}},
    ))
    fig.update_layout(
        showlegend=False,
        xaxis={"title": "time of the first packet (UTC)", "type": "date"},
        yaxis={"title": "sockets reached", "rangemode": "tozero", "tickformat": ",d"},
    )
    title = "Socket.IO broadcasts: sockets reached (colour: spread)"
    if total > len(bc):
        title += (f" ({len(bc):,} of {total:,} drawn: evenly spaced over time, with the fewest and most "
                  "sockets reached and the widest spread)")
    return ("sio-broadcasts", title, fig)
