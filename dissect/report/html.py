"""One self-contained report.html: plots of an analysis plus drill-down tables.

plotly (the ``wiredissect[html]`` extra) draws the plots; plotly.js is embedded once, inline, so
the page needs no network. Without plotly the page has the tables only and says so.

Every string that came from traffic is attacker-controlled. In the page's own HTML it goes through
:func:`html.escape`. In figure JSON it is HTML-escaped too (plotly.js renders a subset of HTML in
labels and hover text, and decodes ``&lt;`` back to a literal ``<`` for display), and the JSON is
written with ``<``, ``>``, ``&``, U+2028 and U+2029 as ``\\uXXXX`` escapes so that no string can end
the ``<script>`` element it sits in.

Sizes stay bounded on large captures: tables are aggregated before plotting, scatter/box points are
sampled to ``max_points`` per trace, and the drill-down tables are cut to ``max_rows`` rows.
"""

from __future__ import annotations

import datetime as _dt
import functools
import html
import json
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dissect.output.summary import LAYERS, anomaly_kind, split_anomalies, summary_of
from dissect.report.terminal import safe_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

MAX_POINTS = 5000
MAX_ROWS = 200
TOP_SESSIONS = 20
TIME_BINS = 200
CHAIN_SESSIONS = 40

LAYER_COLORS = {
    "tcp": "#4c78a8",
    "websocket": "#f58518",
    "engineio": "#54a24b",
    "socketio": "#b279a2",
}
DIR_COLORS = {"c2s": "#4c78a8", "s2c": "#e45756"}

_JS_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def esc(s: Any, limit: int | None = 200) -> str:
    """Traffic text for the page's HTML: control characters shown escaped, then HTML-escaped."""
    return html.escape(safe_text(s, limit), quote=True)


def plot_text(s: Any, limit: int | None = 80) -> str:
    """Traffic text for a plotly label or hover text (rendered as text, never as markup)."""
    return html.escape(safe_text(s, limit), quote=False)


def script_json(obj: Any) -> str:
    """JSON safe to place inside a ``<script>`` element."""
    text = obj if isinstance(obj, str) else json.dumps(obj, allow_nan=False)
    for ch, rep in _JS_ESCAPES.items():
        text = text.replace(ch, rep)
    return text


def _num(s: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for missing values."""
    return np.asarray(pd.to_numeric(s, errors="coerce").astype("float64"), dtype=np.float64)


def _sample(df: pd.DataFrame, n: int) -> pd.DataFrame:
    return df if len(df) <= n else df.sample(n=n, random_state=0)


def _utc(ts: float | None) -> str:
    if ts is None or (isinstance(ts, float) and math.isnan(ts)):
        return ""
    try:
        t = _dt.datetime.fromtimestamp(float(ts), tz=_dt.timezone.utc)
    except (OverflowError, ValueError, OSError):  # a capture's timestamps may be anything
        return f"{float(ts):.6g} s"
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _fmt(v: Any) -> str:
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.6g}"
    return str(v)


# -- figures --------------------------------------------------------------------------------------


class _Figure:
    """A plotly figure as the plain ``{"data", "layout"}`` dict that plotly.js draws.

    plotly's Python graph objects would validate every property (and load the template through
    them): more time and about 40 MB more memory than the whole report page needs.
    """

    __slots__ = ("data", "layout")

    def __init__(self, layout: dict[str, Any]) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}
        _merge(self.layout, layout)

    def add_trace(self, trace: dict[str, Any]) -> None:
        self.data.append(trace)

    def update_layout(self, **props: Any) -> None:
        _merge(self.layout, props)

    def to_dict(self) -> dict[str, Any]:
        layout = dict(self.layout)
        for key, axis in layout.items():
            # plotly.js 3 takes an axis title only as {"text": ...}
            if key[1:5] == "axis" and isinstance(axis, dict) and isinstance(axis.get("title"), str):
                layout[key] = {**axis, "title": {"text": axis["title"]}}
        return {"data": _plain(self.data), "layout": _plain(layout)}


def _trace(kind: str, **props: Any) -> dict[str, Any]:
    return {"type": kind, **props}


def _direction_bars(fig: _Figure, categories: list[str], counts: dict[str, list[int]],
                    horizontal: bool = False) -> None:
    """One bar trace per direction (in its colour) with any count, over ``categories``."""
    for direction, values in counts.items():
        if any(values):
            cells = {"y": categories, "x": values, "orientation": "h"} if horizontal else \
                {"x": categories, "y": values}
            fig.add_trace(_trace("bar", **cells, name=direction, marker={"color": DIR_COLORS[direction]}))


def _merge(into: dict[str, Any], props: dict[str, Any]) -> None:
    """Nested dicts are merged, as plotly's ``update_layout`` does; other values replaced."""
    for k, v in props.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict) and k != "template":
            into[k] = dict(into[k])
            _merge(into[k], v)
        else:
            into[k] = v


def _plain(v: Any) -> Any:
    """JSON values: NaN and infinities as null, numpy scalars as Python numbers."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _plotly_file(name: str) -> bytes | None:
    """A file of plotly's package data (plotly.js, templates), or None without plotly."""
    import importlib.resources

    try:
        import plotly  # noqa: F401 - only its package data is used
    except ImportError:
        return None
    try:
        return (importlib.resources.files("plotly") / "package_data" / name).read_bytes()
    except OSError:
        return None


@functools.lru_cache(maxsize=4)
def _template(name: str) -> dict[str, Any]:
    text = _plotly_file(f"templates/{name}.json")
    return json.loads(text) if text else {}


# Points per block when the activity plot spreads a block's rows over its time span.
_BLOCK_POINTS = 8


def _activity(a: Analysis, table: str) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """direction -> (times in seconds, weights or None) of every row of ``table`` for a plot
    over time. From the rows when the table was read whole; when it was sampled, from the
    blocks its writer recorded (``ReportWriter.blocks``: each block's rows spread evenly over
    its first to last time, its client-to-server count apart)."""
    from dissect.output.writers import ACTIVITY_COLUMNS

    blocks = (getattr(a, "blocks", None) or {}).get(table)
    if table in a.sampled and blocks is not None and len(blocks.t_first) == len(blocks.rows):
        t0 = np.frombuffer(blocks.t_first, dtype=np.float64)
        t1 = np.frombuffer(blocks.t_last, dtype=np.float64)
        rows = np.frombuffer(blocks.rows, dtype=np.int64)
        c2s = np.frombuffer(blocks.c2s, dtype=np.int64)
        k = np.arange(_BLOCK_POINTS)
        t = (t0[:, None] + (t1 - t0)[:, None] * ((k + 0.5) / _BLOCK_POINTS)).ravel()

        def spread(n: np.ndarray) -> np.ndarray:
            # n rows over the block's points in whole rows (the first n % K points one more).
            return (n[:, None] // _BLOCK_POINTS + (k[None, :] < (n % _BLOCK_POINTS)[:, None])).ravel()

        return {"c2s": (t, spread(c2s)), "s2c": (t, spread(rows - c2s))}
    df = a.table(table)
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    if len(df):
        for direction in ("c2s", "s2c"):
            t = _num(df.loc[df["direction"] == direction, ACTIVITY_COLUMNS[table]])
            out[direction] = (t[~np.isnan(t)], None)
    return out


def _figures(a: Analysis, summary: dict[str, Any], max_points: int) -> list[tuple[str, str, _Figure]]:
    """(anchor, title, figure) for every plot that has data."""
    out: list[tuple[str, str, _Figure]] = []
    base_layout: dict[str, Any] = {
        "template": _template("plotly_white"),
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "height": 420,
        "legend": {"orientation": "h", "y": -0.15},
    }

    # Handshake durations per layer.
    hs = a.handshakes
    if len(hs):
        fig = _Figure(base_layout)
        dur_all = _num(hs["duration_ms"])
        positive = dur_all[dur_all > 0]
        for layer in list(LAYERS) + sorted(set(hs["layer"].dropna().astype(str)) - set(LAYERS)):
            sub = hs[hs["layer"] == layer]
            d = _num(sub["duration_ms"])
            d = d[~np.isnan(d)]
            if not len(d):
                continue
            pts = d if len(d) <= max_points else np.random.default_rng(0).choice(d, max_points, replace=False)
            fig.add_trace(
                _trace("box",
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
            out.append(("handshake-durations", "Handshake duration per layer", fig))

    # Chain per session: tcp -> websocket -> engineio -> socketio, offsets from the first step.
    if len(hs):
        h = hs[["session_id", "layer", "ts_start", "ts_end", "duration_ms", "ok", "detail"]].copy()
        h["t0"] = _num(h["ts_start"])
        h = h[~np.isnan(h["t0"].to_numpy())]
        if len(h):
            layers_per = h.groupby("session_id")["layer"].nunique()
            first = h.groupby("session_id")["t0"].min()
            order = pd.DataFrame({"n": layers_per, "first": first}).sort_values(["n", "first"], ascending=[False, True])
            chosen = list(order.index[:CHAIN_SESSIONS])
            chosen.sort(key=lambda sid: first[sid])
            h = h[h["session_id"].isin(chosen)].copy()
            h["start_ms"] = (h["t0"] - h["session_id"].map(first)) * 1000.0
            dur = _num(h["duration_ms"])
            end = _num(h["ts_end"])
            dur = np.where(np.isnan(dur), (end - h["t0"].to_numpy()) * 1000.0, dur)
            h["dur"] = np.nan_to_num(dur, nan=0.0)
            labels = {sid: f"session {sid}" for sid in chosen}
            fig = _Figure(base_layout)
            for layer in list(LAYERS) + sorted(set(h["layer"].astype(str)) - set(LAYERS)):
                sub = h[h["layer"] == layer]
                if not len(sub):
                    continue
                ok = sub["ok"].map(lambda v: v is True or v == 1 or v == "true").to_numpy(dtype=bool)
                fig.add_trace(
                    _trace("bar",
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
                barmode="overlay",
                height=max(300, 22 * len(chosen) + 120),
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
                            "x": 0.0,
                            "xanchor": "left",
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
            out.append(("chain", title, fig))

    # Frames and messages over time, binned by direction: every row counts, also when the
    # tables were sampled (then from the writer's blocks, see _activity).
    series = [(name, _activity(a, table)) for name, table in
              (("frames", "ws_frames"), ("messages", "ws_messages"), ("sio packets", "sio_packets"))]
    all_ts = [t for _, by_dir in series for t, _w in by_dir.values() if len(t)]
    if all_ts:
        lo = min(float(t.min()) for t in all_ts)
        hi = max(float(t.max()) for t in all_ts)
        nbins = TIME_BINS if hi > lo else 1
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, nbins + 1)
        width = edges[1] - edges[0]
        centers = [_utc(x) for x in (edges[:-1] + width / 2)]
        fig = _Figure(base_layout)
        for name, by_dir in series:
            for direction, (t, weights) in by_dir.items():
                if not len(t):
                    continue
                counts, _ = np.histogram(t, bins=edges, weights=weights)
                fig.add_trace(
                    _trace("scatter",
                        x=centers,
                        y=np.rint(counts).astype(np.int64).tolist(),
                        mode="lines",
                        line={
                            "shape": "hv",
                            "color": DIR_COLORS[direction],
                            "dash": {"frames": "solid", "messages": "dot"}.get(name, "dash"),
                        },
                        name=f"{name} {direction}",
                    )
                )
        fig.update_layout(
            xaxis={"title": "time (UTC)", "type": "date"},
            yaxis={"title": f"count per {width:.3g} s"},
        )
        if fig.data:
            out.append(("over-time", "Frames and messages over time", fig))

    # Message sizes: power-of-two bins (a log axis), by direction.
    msg = a.ws_messages
    if len(msg):
        size = _num(msg["payload_bytes"])
        wire = _num(msg["wire_bytes"])
        size = np.where(np.isnan(size), wire, size)
        ok = ~np.isnan(size)
        if ok.any():
            b = np.where(size[ok] <= 0, -1, np.floor(np.log2(np.maximum(size[ok], 1)))).astype(int)
            dirs = msg["direction"].astype(str).to_numpy()[ok]
            kmin, kmax = int(b.min()), int(b.max())
            labels_ = [_size_bin_label(k) for k in range(kmin, kmax + 1)]
            fig = _Figure(base_layout)
            _direction_bars(fig, labels_, {
                d: np.bincount(b[dirs == d] - kmin, minlength=kmax - kmin + 1).tolist() for d in ("c2s", "s2c")
            })
            fig.update_layout(
                barmode="group",
                xaxis={"title": "payload size (log2 bins)", "type": "category"},
                yaxis={"title": "messages"},
            )
            out.append(("message-sizes", "WebSocket message sizes", fig))

    # Ack latency percentiles per namespace.
    sio = a.sio_packets
    if len(sio):
        lat = _num(sio["ack_latency_ms"])
        has = ~np.isnan(lat)
        if has.any():
            fig = _Figure(base_layout)
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
                    _trace("bar",
                        x=["p50", "p90", "p99", "max"],
                        y=[round(x, 6) for x in q],
                        name=plot_text(f"{gname} (n={len(v)})", 60),
                    )
                )
            fig.update_layout(barmode="group", yaxis={"title": "ack latency (ms)"}, xaxis={"type": "category"})
            out.append(("ack-latency", "Socket.IO ack latency", fig))

    # Opcode mix.
    fr = a.ws_frames
    if len(fr):
        g = fr.groupby([fr["opcode_name"].astype(str), fr["direction"].astype(str)]).size()
        names = sorted({k[0] for k in g.index})
        fig = _Figure(base_layout)
        _direction_bars(fig, [plot_text(n, 30) for n in names],
                        {d: [int(g.get((n, d), 0)) for n in names] for d in ("c2s", "s2c")})
        fig.update_layout(
            barmode="group",
            xaxis={"type": "category", "title": "opcode"},
            yaxis={"title": "frames"},
        )
        out.append(("opcodes", "WebSocket frames by opcode", fig))

    # Socket.IO event mix (top 25 namespace/event pairs), stacked by direction.
    if len(sio):
        ev = sio[sio["sio_type"].isin(["EVENT", "BINARY_EVENT"])]
        if len(ev):
            nsp = ev["namespace"].where(ev["namespace"].notna(), "/").astype(str)
            name = ev["event"].where(ev["event"].notna(), "").astype(str)
            key = nsp + "  " + name
            top = key.value_counts().head(25)
            cats = [plot_text(k, 80) for k in top.index]
            fig = _Figure(base_layout)
            per_dir = {d: key[ev["direction"] == d].value_counts() for d in ("c2s", "s2c")}
            _direction_bars(fig, cats, {d: [int(vc.get(k, 0)) for k in top.index] for d, vc in per_dir.items()},
                            horizontal=True)
            fig.update_layout(
                barmode="stack",
                height=max(300, 22 * len(cats) + 120),
                yaxis={"type": "category", "autorange": "reversed", "automargin": True},
                xaxis={"title": "events"},
            )
            title = "Socket.IO events (namespace, event)"
            if key.nunique() > len(top):
                title += f": top {len(top)} of {key.nunique()}"
            out.append(("events", title, fig))

    # Anomalies by kind, stacked by table.
    by_table = (summary.get("anomalies") or {}).get("by_table") or {}
    if by_table:
        kinds: dict[str, int] = {}
        for counts in by_table.values():
            for k, n in counts.items():
                kinds[k] = kinds.get(k, 0) + int(n)
        top_kinds = sorted(kinds, key=lambda k: (-kinds[k], k))[:30]
        fig = _Figure(base_layout)
        for table, counts in by_table.items():
            fig.add_trace(
                _trace("bar",
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
            xaxis={"title": "occurrences"},
        )
        out.append(("anomalies", "Anomalies by kind", fig))
    return out


def _size_bin_label(k: int) -> str:
    if k < 0:
        return "0 B"

    def unit(v: int) -> str:
        for u in ("B", "KiB", "MiB", "GiB"):
            if v < 1024:
                return f"{v} {u}"
            v //= 1024
        return f"{v} TiB"

    return f"{unit(2**k)}-" if k == 0 else f"{unit(2**k)}–{unit(2 ** (k + 1))}"


# -- tables ---------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    c = f' class="{esc(cls)}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _df_table(df: pd.DataFrame, columns: Sequence[str], ts_cols: Sequence[str] = ()) -> str:
    cols = [c for c in columns if c in df.columns]
    rows = []
    for rec in df[cols].itertuples(index=False, name=None):
        row = []
        for c, v in zip(cols, rec, strict=False):
            if c in ts_cols:
                v = _utc(None if v is None or v is pd.NA else float(v))
            row.append(v)
        rows.append(row)
    return _table(cols, rows)


def _cards(summary: dict[str, Any]) -> str:
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


def _handshake_table(summary: dict[str, Any]) -> str:
    rows = []
    for layer, h in (summary.get("handshakes") or {}).items():
        if not h.get("count"):
            continue
        d = h.get("duration_ms") or {}
        rows.append(
            [
                layer,
                h.get("count"),
                h.get("failed"),
                d.get("p50"),
                d.get("p90"),
                d.get("p99"),
                d.get("max"),
            ]
        )
    if not rows:
        return "<p>No handshakes.</p>"
    return _table(["layer", "count", "failed", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows)


def _pair(a: Any, b: Any, sep: str) -> str:
    return f"{_fmt(a)}{sep}{_fmt(b)}"


def _sessions_section(a: Analysis, max_rows: int) -> str:
    s = a.sessions
    if not len(s):
        return "<p>No sessions.</p>"
    pk = _num(s["packets_c2s"]) + _num(s["packets_s2c"])
    order = np.argsort(-np.nan_to_num(pk), kind="stable")
    shown = s.iloc[order[:max_rows]]
    note = ""
    if len(s) > max_rows:
        note = f"<p class=note>The {max_rows} sessions with the most packets, of {len(s):,}.</p>"
    rows = []
    for r in shown.to_dict("records"):
        t0 = _num(pd.Series([r.get("ts_first")]))[0]
        t1 = _num(pd.Series([r.get("ts_last")]))[0]
        rows.append(
            [
                r.get("session_id"),
                r.get("transport"),
                _pair(r.get("client_ip"), r.get("client_port"), ":")
                + (" (inferred)" if r.get("client_inferred") is True else ""),
                _pair(r.get("server_ip"), r.get("server_port"), ":"),
                r.get("app_protocol"),
                _utc(t0),
                "" if np.isnan(t0) or np.isnan(t1) else f"{t1 - t0:.3f}",
                _pair(r.get("packets_c2s"), r.get("packets_s2c"), " / "),
                _pair(r.get("bytes_c2s"), r.get("bytes_s2c"), " / "),
                r.get("tcp_handshake_ms"),
                r.get("retransmissions"),
                r.get("lost_bytes"),
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
    return note + _table(headers, rows, cls="sessions")


def _drilldown_section(a: Analysis, top: int) -> str:
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
                f" &mdash; {esc(r.get('client_ip'))}:{esc(_fmt(r.get('client_port')))} &rarr; "
                f"{esc(r.get('server_ip'))}:{esc(_fmt(r.get('server_port')))} "
                f"({esc(r.get('app_protocol'))}, close {esc(r.get('close'))})"
            )
        body = []
        hs = a.handshakes[a.handshakes["session_id"] == sid]
        if len(hs):
            body.append(
                "<h4>Handshakes</h4>"
                + _df_table(
                    hs,
                    ["layer", "ts_start", "duration_ms", "ok", "transport", "detail"],
                    ts_cols=("ts_start",),
                )
            )
        ht = a.http[a.http["session_id"] == sid].head(20)
        if len(ht):
            body.append(
                "<h4>HTTP</h4>"
                + _df_table(
                    ht,
                    ["ts_request", "duration_ms", "method", "target", "host", "status", "upgrade"],
                    ts_cols=("ts_request",),
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
                    ts_cols=("ts_first",),
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
                    ts_cols=("ts",),
                )
            )
        parts.append(f"<details><summary>{head}</summary>{''.join(body)}</details>")
    return "".join(parts)


def _files_section(summary: dict[str, Any]) -> str:
    files = summary.get("files") or []
    out = ""
    if files:
        out += _table(
            ["file", "packets", "bytes", "link types", "sessions", "first packet", "last packet"],
            [
                [
                    f.get("path"),
                    f.get("packets"),
                    f.get("bytes"),
                    ", ".join(str(x) for x in f.get("link_types") or []),
                    f.get("sessions"),
                    _utc(f.get("ts_first")),
                    _utc(f.get("ts_last")),
                ]
                for f in files
            ],
        )
    warn = (summary.get("warnings") or {}).get("by_kind") or {}
    if warn:
        out += "<h3>Reader warnings</h3>" + _table(
            ["kind", "count", "details"],
            [[k, w.get("count"), "; ".join(str(d) for d in w.get("details") or [])] for k, w in warn.items()],
        )
    return out or "<p>No capture file information.</p>"


def _anomaly_rows(a: Analysis, limit: int = 50) -> str:
    rows = []
    for table, key in (
        ("sessions", None),
        ("http", None),
        ("ws_frames", "frame_index"),
        ("ws_messages", "message_index"),
        ("sio_packets", None),
    ):
        df = a.table(table)
        if not len(df) or "anomaly" not in df.columns:
            continue
        bad = df[df["anomaly"].fillna("").astype(str) != ""]
        for rec in bad.head(limit).itertuples(index=False):
            r = rec._asdict()
            kinds = ", ".join(sorted({anomaly_kind(t) for t in split_anomalies(r["anomaly"])}))
            rows.append([table, r["session_id"], r.get(key) if key else "", kinds, r["anomaly"]])
    if not rows:
        return "<p>No anomalies.</p>"
    return _table(["table", "session_id", "index", "kinds", "anomaly"], rows[: limit * 2])


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
max-width:1400px}
h1{font-size:24px;margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;
padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}.card{border:1px solid #ddd;
border-radius:6px;padding:10px 16px;min-width:110px}.card .v{font-size:22px;font-weight:600}
.card .l{color:#666;font-size:12px}.card.bad .v{color:#c62828}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #ddd;
padding:3px 6px;text-align:left;vertical-align:top;max-width:420px;overflow-wrap:anywhere}
th{background:#f4f4f4}table.sessions td{white-space:nowrap}
table.sessions td:nth-last-child(-n+2){white-space:normal}.note{color:#666;font-size:13px}.warn{background:#fff3cd;
border:1px solid #e0c36c;padding:8px 12px;border-radius:4px}
details{margin:6px 0}summary{cursor:pointer;font-weight:500}nav a{margin-right:12px}
.plot{width:100%}
"""


def render_html(
    analysis: Analysis,
    path: str,
    title: str = "dissect report",
    *,
    max_points: int = MAX_POINTS,
    max_rows: int = MAX_ROWS,
) -> None:
    """Write one self-contained HTML report of ``analysis`` to ``path``."""
    summary = summary_of(analysis)
    plotly_js = _plotly_file("plotly.min.js")

    plots_html: list[str] = []
    nav: list[tuple[str, str]] = []
    # plotly.js (~5 MB, not all ASCII) is copied from its file to the page as bytes: as a str
    # it would take up to four bytes a character in every copy made while building the page.
    head_script = b""
    if plotly_js is not None:
        figs = _figures(analysis, summary, max_points)
        if figs:
            head_script = plotly_js
        for i, (anchor, ftitle, fig) in enumerate(figs):
            div = f"plot-{i}"
            data = script_json(fig.to_dict())
            height = int(fig.layout.get("height") or 420)
            plots_html.append(
                f'<h2 id="{esc(anchor)}">{esc(ftitle, None)}</h2>'
                f'<div id="{div}" class="plot" style="height:{height}px"></div>'
                f"<script>(function(){{var f={data};"
                f'Plotly.newPlot("{div}",f.data,f.layout,'
                f"{{responsive:true,displaylogo:false}});}})();</script>"
            )
            nav.append((anchor, ftitle))
        if not figs:
            plots_html.append("<p class=note>No data to plot.</p>")
    else:
        plots_html.append(
            '<p class="warn">Plots are missing: plotly is not installed. '
            "Install it with <code>pip install 'wiredissect[html]'</code> and render the report "
            "again.</p>"
        )

    sections = [
        ("files", "Capture files", _files_section(summary)),
        ("handshake-table", "Handshake percentiles", _handshake_table(summary)),
        ("sessions", "Sessions", _sessions_section(analysis, max_rows)),
        (
            "top-sessions",
            f"Top {TOP_SESSIONS} sessions by messages",
            _drilldown_section(analysis, TOP_SESSIONS),
        ),
        ("anomaly-rows", "Rows with anomalies", _anomaly_rows(analysis)),
    ]
    nav += [(a_, t) for a_, t, _ in sections]
    nav_html = "<nav>" + "".join(f'<a href="#{esc(a_)}">{esc(t, None)}</a>' for a_, t in nav) + "</nav>"
    cap = summary.get("capture") or {}
    subtitle = ""
    if cap.get("ts_first") is not None:
        subtitle = (
            f"<p class=note>{esc(_utc(cap['ts_first']))} to {esc(_utc(cap['ts_last']))} UTC "
            f"({float(cap.get('duration_s') or 0):.3f} s)</p>"
        )
    sampled = getattr(analysis, "sampled", None) or {}
    if sampled:
        which = ", ".join(f"{esc(t)} 1 row in {k}" for t, k in sorted(sampled.items()))
        every_row = any(t in (getattr(analysis, "blocks", None) or {}) for t in sampled)
        subtitle += (f"<p class=warn>A large capture: the plots and tables below are drawn from a "
                     f"systematic sample ({which}"
                     + ("; whole runs of consecutive rows" if every_row else "")
                     + "); the totals come from summary.json"
                     + (", and the plot over time counts every row" if every_row else "")
                     + ".</p>")
    body = [
        f"<h1>{esc(title, None)}</h1>",
        subtitle,
        _cards(summary),
        nav_html,
        *plots_html,
        *(f'<h2 id="{esc(a_)}">{esc(t, None)}</h2>{content}' for a_, t, content in sections),
    ]
    head = (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title, None)}</title><style>{CSS}</style>"
    )
    with open(path, "wb") as f:
        f.write(head.encode())
        if head_script:
            f.write(b"<script>")
            f.write(head_script)
            f.write(b"</script>")
        f.write(("</head><body>" + "".join(body) + "</body></html>\n").encode())
