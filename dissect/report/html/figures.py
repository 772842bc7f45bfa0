"""The plots of report.html, one function per figure: its data (aggregated, points sampled to
``max_points``) and its layout. :func:`figures` returns those that have data, in page order."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dissect.output.summary import LAYERS
from dissect.report.html.activity import activity, time_bucket
from dissect.report.html.plot import DIR_COLORS, LAYER_COLORS, Figure, direction_bars, template, trace
from dissect.report.html.sockets import fanout, socket_timeline
from dissect.report.html.text import numeric, plot_text, utc_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

MAX_POINTS = 5000
TIME_BINS = 200
CHAIN_SESSIONS = 40

LEGEND: dict[str, Any] = {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"}
"""Every plot's legend: one row above the plot area, left, where no axis title or tick label is
(below the plot it ran into the time axis's two-line tick labels and its title)."""

Plot = tuple[str, str, Figure]
"""A plot of the page: (anchor, title, figure)."""


def figures(a: Analysis, summary: dict[str, Any], max_points: int) -> list[Plot]:
    """(anchor, title, figure) for every plot that has data."""
    base_layout: dict[str, Any] = {
        "template": template("plotly_white"),
        "margin": {"l": 60, "r": 20, "t": 70, "b": 50},
        "height": 420,
        "legend": LEGEND,
    }
    hs = a.handshakes
    sio = a.sio_packets
    found = [
        _handshake_durations(hs, base_layout, max_points),
        _handshake_chains(hs, base_layout),
        _over_time(a, base_layout),
        _message_sizes(a.ws_messages, base_layout),
        _ack_latency(sio, base_layout),
        _opcodes(a.ws_frames, base_layout),
        _events(sio, base_layout),
        socket_timeline(a, base_layout),
        fanout(a, base_layout, max_points),
        _anomalies(summary, base_layout),
    ]
    return [f for f in found if f is not None]


def _handshake_durations(hs: pd.DataFrame, base_layout: dict[str, Any], max_points: int) -> Plot | None:
    """Handshake durations per layer."""
    if not len(hs):
        return None
    fig = Figure(base_layout)
    dur_all = numeric(hs["duration_ms"])
    positive = dur_all[dur_all > 0]
    for layer in list(LAYERS) + sorted(set(hs["layer"].dropna().astype(str)) - set(LAYERS)):
        sub = hs[hs["layer"] == layer]
        d = numeric(sub["duration_ms"])
        d = d[~np.isnan(d)]
        if not len(d):
            continue
        pts = d if len(d) <= max_points else np.random.default_rng(0).choice(d, max_points, replace=False)
        fig.add_trace(
            trace("box",
                x=pts.round(6).tolist(),
                name=plot_text(layer, 20),
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"size": 4, "opacity": 0.6, "color": LAYER_COLORS.get(layer, "#888")},
                line={"color": LAYER_COLORS.get(layer, "#888")},
                orientation="h",
                hovertemplate="%{x:.3f} ms<extra></extra>",
            )
        )
    use_log = len(positive) > 0 and positive.max() / max(positive.min(), 1e-9) > 1000
    fig.update_layout(
        xaxis={
            "title": "duration (ms)" + (", log scale" if use_log else ""),
            "type": "log" if use_log else "linear",
        },
        yaxis={"type": "category", "autorange": "reversed"},
        showlegend=False,
    )
    if fig.data:
        return ("handshake-durations", "Handshake duration per layer", fig)
    return None


def _handshake_chains(hs: pd.DataFrame, base_layout: dict[str, Any]) -> Plot | None:
    """Chain per session: tcp -> websocket -> engineio -> socketio, offsets from the first step."""
    if not len(hs):
        return None
    h = hs[["session_id", "layer", "ts_start", "ts_end", "duration_ms", "ok", "detail"]].copy()
    h["t0"] = numeric(h["ts_start"])
    h = h[~np.isnan(h["t0"].to_numpy())]
    if not len(h):
        return None
    layers_per = h.groupby("session_id")["layer"].nunique()
    first = h.groupby("session_id")["t0"].min()
    order = pd.DataFrame({"n": layers_per, "first": first}).sort_values(["n", "first"], ascending=[False, True])
    chosen = list(order.index[:CHAIN_SESSIONS])
    chosen.sort(key=lambda sid: first[sid])
    h = h[h["session_id"].isin(chosen)].copy()
    h["start_ms"] = (h["t0"] - h["session_id"].map(first)) * 1000.0
    dur = numeric(h["duration_ms"])
    end = numeric(h["ts_end"])
    dur = np.where(np.isnan(dur), (end - h["t0"].to_numpy()) * 1000.0, dur)
    h["dur"] = np.nan_to_num(dur, nan=0.0)
    labels = {sid: f"session {sid}" for sid in chosen}
    fig = Figure(base_layout)
    # One row per layer within a session (barmode "group", the layers top to bottom in chain
    # order): each layer's bar is visible, even where one starts under another (websocket and
    # engineio both start at the GET of a WebSocket-only client).
    layers = [x for x in list(LAYERS) + sorted(set(h["layer"].astype(str)) - set(LAYERS))
              if (h["layer"] == x).any()]
    for layer in layers:
        sub = h[h["layer"] == layer]
        if not len(sub):
            continue
        ok = sub["ok"].map(lambda v: v is True or v == 1 or v == "true").to_numpy(dtype=bool)
        fig.add_trace(
            trace("bar",
                y=[labels[s] for s in sub["session_id"]],
                x=sub["dur"].round(6).tolist(),
                base=sub["start_ms"].round(6).tolist(),
                orientation="h",
                name=plot_text(layer, 20),
                marker={
                    "color": LAYER_COLORS.get(layer, "#888"),
                    "line": {
                        "color": ["#000" if o else "#d62728" for o in ok],
                        "width": [0 if o else 2 for o in ok],
                    },
                },
                customdata=[
                    [plot_text(d, 120), "ok" if o else "FAILED"]
                    for d, o in zip(sub["detail"], ok, strict=False)
                ],
                hovertemplate=(
                    "%{y} " + plot_text(layer, 20) + ": %{x:.3f} ms from +%{base:.3f} ms"
                    "<br>%{customdata[1]} %{customdata[0]}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        barmode="group",
        bargap=0.25,
        bargroupgap=0.1,
        height=max(300, (10 * len(layers) + 10) * len(chosen) + 160),
        xaxis={"title": "ms since the session's first handshake step"},
        yaxis={
            "type": "category",
            "autorange": "reversed",
            "categoryorder": "array",
            "categoryarray": [labels[s] for s in chosen],
        },
    )
    # One slow session must not squash every other chain into a sliver: start zoomed on
    # the typical chains, with a button to show everything.
    ends = (h["start_ms"] + h["dur"]).groupby(h["session_id"]).max().to_numpy()
    typical = float(np.percentile(ends, 90)) if len(ends) else 0.0
    longest = float(ends.max()) if len(ends) else 0.0
    if typical > 0 and longest > 4 * typical:
        zoom = [0.0, typical * 1.3]
        fig.update_layout(
            xaxis={"range": zoom},
            updatemenus=[
                {
                    "type": "buttons",
                    "direction": "right",
                    "x": 1.0,
                    "xanchor": "right",
                    "y": 1.0,
                    "yanchor": "bottom",
                    "showactive": True,
                    "buttons": [
                        {"label": "typical chains", "method": "relayout", "args": [{"xaxis.range": zoom}]},
                        {
                            "label": f"all (to {longest:.0f} ms)",
                            "method": "relayout",
                            "args": [{"xaxis.autorange": True}],
                        },
                    ],
                }
            ],
        )
    title = "Handshake chain per session"
    if len(order) > len(chosen):
        title += f" (the {len(chosen)} of {len(order)} sessions with the longest chains)"
    return ("chain", title, fig)


def _over_time(a: Analysis, base_layout: dict[str, Any]) -> Plot | None:
    """Frames and messages over time, binned by direction: every row counts, also when the
    tables were sampled (then from the writer's blocks, see :func:`~dissect.report.html.activity.activity`)."""
    series = [(name, activity(a, table)) for name, table in
              (("frames", "ws_frames"), ("messages", "ws_messages"), ("sio packets", "sio_packets"))]
    all_ts = [t for _, by_dir in series for t, _w in by_dir.values() if len(t)]
    if not all_ts:
        return None
    lo = min(float(t.min()) for t in all_ts)
    hi = max(float(t.max()) for t in all_ts)
    width, unit = time_bucket(hi - lo, TIME_BINS)
    # Buckets on whole multiples of their width (a 10 ms bucket starts at .000, .010, ...);
    # counted on times relative to the first bucket, so edges always increase.
    start = math.floor(lo / width) * width
    if not 0 <= lo - start < width:  # timestamps too large for the width's precision
        start = lo
    nbins = int(min(max(1, math.floor((hi - start) / width) + 1), 4 * TIME_BINS))
    edges = width * np.arange(nbins + 1)
    # A step line (shape "hv") from each bucket's start, and one more point at the last bucket's
    # end so that it has a width too.
    starts = [utc_text(start + x, 6) for x in edges]
    fig = Figure(base_layout)
    top = 0
    for name, by_dir in series:
        for direction, (t, weights) in by_dir.items():
            if not len(t):
                continue
            counts, _ = np.histogram(t - start, bins=edges, weights=weights)
            y = np.rint(counts).astype(np.int64).tolist()
            top = max([top, *y])
            fig.add_trace(
                trace("scatter",
                    x=starts,
                    y=y + y[-1:],
                    mode="lines",
                    line={
                        "shape": "hv",
                        "color": DIR_COLORS[direction],
                        "dash": {"frames": "solid", "messages": "dot"}.get(name, "dash"),
                    },
                    name=f"{name} {direction}",
                    hovertemplate=f"%{{y}} {name} {direction} in the {unit} from %{{x}}<extra></extra>",
                )
            )
    fig.update_layout(
        xaxis={"title": "time (UTC)", "type": "date"},
        # Counts: whole-number ticks (plotly steps by 0.5 when the counts are small).
        yaxis={"title": f"frames, messages, packets per {unit}", "rangemode": "tozero",
               **({"dtick": 1} if top <= 8 else {"tickformat": ",d"})},
    )
    if fig.data:
        return ("over-time", "Frames and messages over time", fig)
    return None


def _message_sizes(msg: pd.DataFrame, base_layout: dict[str, Any]) -> Plot | None:
    """Message sizes: power-of-two bins (a log axis), by direction."""
    if not len(msg):
        return None
    size = numeric(msg["payload_bytes"])
    wire = numeric(msg["wire_bytes"])
    size = np.where(np.isnan(size), wire, size)
    ok = ~np.isnan(size)
    if not ok.any():
        return None
    b = np.where(size[ok] <= 0, -1, np.floor(np.log2(np.maximum(size[ok], 1)))).astype(int)
    dirs = msg["direction"].astype(str).to_numpy()[ok]
    kmin, kmax = int(b.min()), int(b.max())
    labels_ = [_size_bin_label(k) for k in range(kmin, kmax + 1)]
    fig = Figure(base_layout)
    direction_bars(fig, labels_, {
        d: np.bincount(b[dirs == d] - kmin, minlength=kmax - kmin + 1).tolist() for d in ("c2s", "s2c")
    })
    fig.update_layout(
        barmode="group",
        xaxis={"title": "payload size (log2 bins)", "type": "category"},
        yaxis=count_axis("messages", fig),
    )
    return ("message-sizes", "WebSocket message sizes", fig)


def _ack_latency(sio: pd.DataFrame, base_layout: dict[str, Any]) -> Plot | None:
    """Ack latency percentiles per namespace."""
    if not len(sio):
        return None
    lat = numeric(sio["ack_latency_ms"])
    has = ~np.isnan(lat)
    if not has.any():
        return None
    fig = Figure(base_layout)
    ns = sio["namespace"].where(sio["namespace"].notna(), "/").astype(str).to_numpy()[has]
    vals = lat[has]
    groups = [("all", vals)]
    uniq, counts_ = np.unique(ns, return_counts=True)
    if len(uniq) > 1:
        for u in uniq[np.argsort(-counts_)][:8]:
            groups.append((str(u), vals[ns == u]))
    for gname, v in groups:
        q = np.percentile(v, [50, 90, 99]).tolist() + [float(v.max())]
        fig.add_trace(
            trace("bar",
                x=["p50", "p90", "p99", "max"],
                y=[round(x, 6) for x in q],
                name=plot_text(f"{gname} (n={len(v)})", 60),
            )
        )
    fig.update_layout(barmode="group", yaxis={"title": "ack latency (ms)"}, xaxis={"type": "category"})
    return ("ack-latency", "Socket.IO ack latency", fig)


def _opcodes(fr: pd.DataFrame, base_layout: dict[str, Any]) -> Plot | None:
    """Opcode mix."""
    if not len(fr):
        return None
    g = fr.groupby([fr["opcode_name"].astype(str), fr["direction"].astype(str)]).size()
    names = sorted({k[0] for k in g.index})
    fig = Figure(base_layout)
    direction_bars(fig, [plot_text(n, 30) for n in names],
                   {d: [int(g.get((n, d), 0)) for n in names] for d in ("c2s", "s2c")})
    fig.update_layout(
        barmode="group",
        xaxis={"type": "category", "title": "opcode"},
        yaxis=count_axis("frames", fig),
    )
    return ("opcodes", "WebSocket frames by opcode", fig)


def _events(sio: pd.DataFrame, base_layout: dict[str, Any]) -> Plot | None:
    """Socket.IO event mix (top 25 namespace/event pairs), stacked by direction."""
    if not len(sio):
        return None
    ev = sio[sio["sio_type"].isin(["EVENT", "BINARY_EVENT"])]
    if not len(ev):
        return None
    nsp = ev["namespace"].where(ev["namespace"].notna(), "/").astype(str)
    name = ev["event"].where(ev["event"].notna(), "").astype(str)
    key = nsp + "  " + name
    top = key.value_counts().head(25)
    cats = [plot_text(k, 80) for k in top.index]
    fig = Figure(base_layout)
    per_dir = {d: key[ev["direction"] == d].value_counts() for d in ("c2s", "s2c")}
    direction_bars(fig, cats, {d: [int(vc.get(k, 0)) for k in top.index] for d, vc in per_dir.items()},
                   horizontal=True)
    fig.update_layout(
        barmode="stack",
        height=max(300, 22 * len(cats) + 120),
        yaxis={"type": "category", "autorange": "reversed", "automargin": True},
        xaxis=count_axis("events", fig, stacked=True),
    )
    title = "Socket.IO events (namespace, event)"
    if key.nunique() > len(top):
        title += f": top {len(top)} of {key.nunique()}"
    return ("events", title, fig)


def _anomalies(summary: dict[str, Any], base_layout: dict[str, Any]) -> Plot | None:
    """Anomalies by kind, stacked by table."""
    by_table = (summary.get("anomalies") or {}).get("by_table") or {}
    if not by_table:
        return None
    kinds: dict[str, int] = {}
    for counts in by_table.values():
        for k, n in counts.items():
            kinds[k] = kinds.get(k, 0) + int(n)
    top_kinds = sorted(kinds, key=lambda k: (-kinds[k], k))[:30]
    fig = Figure(base_layout)
    for table, counts in by_table.items():
        fig.add_trace(
            trace("bar",
                y=[plot_text(k, 60) for k in top_kinds],
                x=[int(counts.get(k, 0)) for k in top_kinds],
                name=plot_text(table, 20),
                orientation="h",
            )
        )
    fig.update_layout(
        barmode="stack",
        height=max(300, 22 * len(top_kinds) + 120),
        yaxis={"type": "category", "autorange": "reversed", "automargin": True},
        xaxis=count_axis("occurrences", fig, stacked=True),
    )
    return ("anomalies", "Anomalies by kind", fig)


def count_axis(title: str, fig: Figure, stacked: bool = False) -> dict[str, Any]:
    """An axis of counts: whole-number ticks (plotly steps by 0.2 or 0.5 below about ten)."""
    totals: dict[Any, float] = {}
    for i, t in enumerate(fig.data):
        horizontal = t.get("orientation") == "h"
        cats, vals = (t.get("y"), t.get("x")) if horizontal else (t.get("x"), t.get("y"))
        for c, v in zip(cats or [], vals or [], strict=False):
            key = c if stacked else (i, c)
            totals[key] = totals.get(key, 0) + (v if isinstance(v, int | float) else 0)
    top = max(totals.values(), default=0)
    return {"title": title, "rangemode": "tozero", **({"dtick": 1} if top <= 8 else {"tickformat": ",d"})}


def _size_bin_label(k: int) -> str:
    """The label of the power-of-two size bin ``k`` (-1: empty payloads)."""
    if k < 0:
        return "0 B"

    def unit(v: int) -> str:
        for u in ("B", "KiB", "MiB", "GiB"):
            if v < 1024:
                return f"{v} {u}"
            v //= 1024
        return f"{v} TiB"

    return f"{unit(2**k)}-" if k == 0 else f"{unit(2**k)}–{unit(2 ** (k + 1))}"
