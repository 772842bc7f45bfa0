"""The Socket.IO plots of report.html: each socket's life coloured by why it ended
(``sio_sockets``), and the broadcasts' fan-out (``sio_broadcasts``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dissect.report.html.plot import Figure, trace
from dissect.report.html.text import numeric, plot_text, utc_text

if TYPE_CHECKING:
    import pandas as pd

    from dissect.output.tables import Analysis

MAX_SOCKETS = 300
"""Sockets drawn in the timeline: the first ones by connect time (the page says how many more)."""

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


def _value(x: Any) -> Any:
    """A cell, None when missing (None, NaN, pd.NA)."""
    try:
        return None if x is None or bool(x != x) else x
    except TypeError:  # pd.NA
        return None


def _reason(row: Any) -> str:
    if row.connected is False or row.connected == 0:
        return "refused"
    reason = row.disconnect_reason
    return reason if isinstance(reason, str) and reason else "unknown"


def socket_timeline(a: Analysis, base_layout: dict[str, Any]) -> tuple[str, str, Figure] | None:
    """One line per socket from its CONNECT reply to its end (the capture's end when it was still
    open), coloured by disconnect_reason; the first :data:`MAX_SOCKETS` by connect time."""
    socks: pd.DataFrame = a.sio_sockets
    if not len(socks):
        return None
    socks = socks.sort_values(["ts_connect", "session_id"], kind="stable")
    total = len(socks)
    socks = socks.head(MAX_SOCKETS)
    end = (a.summary.get("capture") or {}).get("ts_last")
    starts = numeric(socks["ts_connect"])
    stops = numeric(socks["ts_disconnect"])
    fallback = float(end) if isinstance(end, (int, float)) else float(np.nanmax(np.concatenate([starts, stops])))
    stops = np.where(np.isnan(stops), fallback, stops)
    by_reason: dict[str, dict[str, list[Any]]] = {}
    labels = []
    for i, row in enumerate(socks.itertuples(index=False)):
        sid = _value(row.socket_sid) or _value(row.eio_sid) or ""
        label = f"{i + 1}. " + plot_text(f"{row.namespace} {sid} #{row.session_id}", 60)  # unique: numbered
        labels.append(label)
        reason = _reason(row)
        cell = by_reason.setdefault(reason, {"x": [], "y": [], "text": []})
        by, pong, recovered = _value(row.disconnect_by), _value(row.max_pong_delay_ms), _value(row.recovered)
        hover = plot_text(
            f"{row.namespace} socket {_value(row.socket_sid) or '-'}, Engine.IO {_value(row.eio_sid) or '-'}, "
            f"session {row.session_id}: {reason}" + (f" by {by}" if by else "")
            + f"; {row.events_c2s} events c2s, {row.events_s2c} s2c; pings {row.pings}"
            + (f", worst pong {float(pong):.1f} ms" if pong is not None else "")
            + (f"; recovered: {recovered}" if recovered is not None else ""), 300)
        t0, t1 = utc_text(starts[i], 6), utc_text(stops[i], 6)
        cell["x"] += [t0, t1, None]
        cell["y"] += [label, label, None]
        cell["text"] += [hover, hover, None]
    fig = Figure(base_layout)
    for reason in sorted(by_reason, key=lambda r: (r not in REASON_COLORS, r)):
        cell = by_reason[reason]
        fig.add_trace(trace(
            "scatter", x=cell["x"], y=cell["y"], text=cell["text"], mode="lines+markers", name=plot_text(reason, 40),
            line={"color": REASON_COLORS.get(reason, _OTHER_COLOR), "width": 6},
            marker={"size": 7, "symbol": "line-ns-open"}, connectgaps=False,
            hovertemplate="%{text}<br>%{x}<extra></extra>",
        ))
    fig.update_layout(
        height=max(300, min(1200, 120 + 22 * len(labels))),
        xaxis={"title": "time (UTC)", "type": "date"},
        yaxis={"title": "", "type": "category", "categoryorder": "array", "categoryarray": labels[::-1],
               "automargin": True},
    )
    title = "Socket.IO sockets: life and why each ended"
    if total > MAX_SOCKETS:
        title += f" (first {MAX_SOCKETS} of {total:,} by connect time)"
    return ("sio-sockets", title, fig)


def fanout(a: Analysis, base_layout: dict[str, Any]) -> tuple[str, str, Figure] | None:
    """Each broadcast: how many sockets got it (and how long the server took to reach them all)."""
    bc: pd.DataFrame = a.sio_broadcasts
    if not len(bc):
        return None
    fig = Figure(base_layout)
    t = numeric(bc["ts_first"])
    spread = numeric(bc["spread_ms"])
    texts = [plot_text(f"{ns} {ev}: {n} sockets within {s:.3f} ms", 200)
             for ns, ev, n, s in zip(bc["namespace"], bc["event"], bc["recipients"], spread, strict=True)]
    fig.add_trace(trace(
        "scatter", x=[utc_text(x, 6) for x in t], y=[int(n) for n in bc["recipients"]], mode="markers",
        name="broadcast", text=texts, hovertemplate="%{text}<br>%{x}<extra></extra>",
        marker={"size": 9, "color": [round(float(s), 6) for s in spread], "colorscale": "Viridis",
                "showscale": True, "colorbar": {"title": {"text": "spread (ms)"}}},
    ))
    fig.update_layout(
        xaxis={"title": "time of the first packet (UTC)", "type": "date"},
        yaxis={"title": "sockets reached", "rangemode": "tozero", "tickformat": ",d"},
    )
    return ("sio-broadcasts", "Socket.IO broadcasts: sockets reached (colour: spread)", fig)
