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

The modules: :mod:`.text` (escaping and formatting), :mod:`.plot` (the figure dict, plotly's
package data), :mod:`.activity` (rows over time, in clock-like buckets), :mod:`.figures` (each
plot), :mod:`.sockets` (the Socket.IO sockets' timeline and the broadcasts' fan-out),
:mod:`.kinds` (what each anomaly and warning kind means), :mod:`.tables` (the HTML tables)
and :mod:`.page` (the page assembled, :func:`render_html`).
"""

from __future__ import annotations

from dissect.report.html.figures import CHAIN_SESSIONS, MAX_POINTS, TIME_BINS
from dissect.report.html.page import CSS, render_html
from dissect.report.html.plot import DIR_COLORS, LAYER_COLORS
from dissect.report.html.tables import MAX_ROWS, TOP_SESSIONS
from dissect.report.html.text import esc, plot_text, script_json

__all__ = [
    "CHAIN_SESSIONS",
    "CSS",
    "DIR_COLORS",
    "LAYER_COLORS",
    "MAX_POINTS",
    "MAX_ROWS",
    "TIME_BINS",
    "TOP_SESSIONS",
    "esc",
    "plot_text",
    "render_html",
    "script_json",
]
