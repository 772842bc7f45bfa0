"""report.html assembled: the title and capture span, the sample banner, the cards, the plots
(plotly.js inlined once, so the page needs no network) and the tables, in one self-contained file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dissect.output.summary import summary_of
from dissect.report.html.figures import MAX_POINTS, figures
from dissect.report.html.plot import plotly_file
from dissect.report.html.tables import (
    MAX_ROWS,
    TOP_SESSIONS,
    anomaly_kinds,
    anomaly_rows,
    cards,
    drilldown_section,
    files_section,
    handshake_table,
    sessions_section,
    sockets_section,
    tls_section,
)
from dissect.report.html.text import esc, script_json, utc_text

if TYPE_CHECKING:
    from dissect.output.tables import Analysis

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;
max-width:1400px}
h1{font-size:24px;margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;
padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}.card{border:1px solid #ddd;
border-radius:6px;padding:10px 16px;min-width:110px}.card .v{font-size:22px;font-weight:600}
.card .l{color:#666;font-size:12px}.card.bad .v{color:#c62828}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #ddd;
padding:3px 6px;text-align:left;vertical-align:top;word-break:normal;overflow-wrap:normal;hyphens:none}
th{background:#f4f4f4}.n{text-align:right}td.n{white-space:nowrap;font-variant-numeric:tabular-nums}
td.t{overflow-wrap:anywhere;min-width:14em;max-width:420px}table.sessions td{white-space:nowrap}
table.sessions td:nth-last-child(-n+2){white-space:normal}
table.sockets td{white-space:nowrap}
table.sockets td:nth-child(8),table.sockets td:nth-last-child(-n+2){white-space:normal}
table.sockets td:nth-child(8){min-width:10em}.note{color:#666;font-size:13px}.warn{background:#fff3cd;
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
    plotly_js = plotly_file("plotly.min.js")

    plots_html: list[str] = []
    nav: list[tuple[str, str]] = []
    # plotly.js (~5 MB, not all ASCII) is copied from its file to the page as bytes: as a str
    # it would take up to four bytes a character in every copy made while building the page.
    head_script = b""
    if plotly_js is not None:
        figs = figures(analysis, summary, max_points)
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

    tls = tls_section(analysis, summary)
    sockets = sockets_section(analysis, max_rows)
    sections = [
        ("files", "Capture files", files_section(summary)),
        ("handshake-table", "Handshake percentiles", handshake_table(summary)),
        *([("tls", "TLS", tls)] if tls else []),
        ("sessions", "Sessions", sessions_section(analysis, max_rows)),
        *([("sio-socket-table", "Socket.IO sockets", sockets)] if sockets else []),
        (
            "top-sessions",
            f"Top {TOP_SESSIONS} sessions by messages",
            drilldown_section(analysis, TOP_SESSIONS),
        ),
        ("anomaly-kinds", "Anomalies", anomaly_kinds(summary) + anomaly_rows(analysis)),
    ]
    nav += [(a_, t) for a_, t, _ in sections]
    nav_html = "<nav>" + "".join(f'<a href="#{esc(a_)}">{esc(t, None)}</a>' for a_, t in nav) + "</nav>"
    cap = summary.get("capture") or {}
    subtitle = ""
    if cap.get("ts_first") is not None:
        subtitle = (
            f"<p class=note>{esc(utc_text(cap['ts_first']))} to {esc(utc_text(cap['ts_last']))} UTC "
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
        cards(summary),
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
