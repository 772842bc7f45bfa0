"""report.html: self-contained, escapes every traffic string, draws in a real (headless) browser."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from dissect.output.summary import SummaryBuilder
from dissect.output.tables import Analysis
from dissect.report.html import plot_text, render_html, script_json
from dissect.report.terminal import print_summary, safe_text
from tests.test_summary import synthetic_rows

EVIL_EVENTS = (
    "message",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</script><script>alert(2)</script>",
    '<a href="javascript:alert(3)">click</a>',
)


def evil_analysis(n_sessions: int = 12) -> Analysis:
    rows = synthetic_rows(n_sessions=n_sessions, messages=10, events=EVIL_EVENTS, namespace="/<b>ns</b>")
    # Attacker text in every kind of place: close reasons, previews, hosts, targets, details.
    evil = "<script>alert(4)</script>"
    rows["ws_frames"] = [f._replace(close_reason=evil) if f.opcode == 8 else f for f in rows["ws_frames"]]
    rows["ws_messages"] = [m._replace(text_preview='"><img src=x onerror=alert(5)>') for m in rows["ws_messages"]]
    rows["http"] = [h._replace(host=evil, target="/x?<img src=x onerror=alert(6)>") for h in rows["http"]]
    rows["handshakes"] = [h._replace(detail=evil) for h in rows["handshakes"]]
    b = SummaryBuilder()
    b.add_file("cap<img src=x onerror=alert(7)>.pcapng", 100, 10000, {"ETHERNET": 100})
    b.add_warning("truncated_file", 1, "<script>alert(8)</script>")
    for table, rs in rows.items():
        b.add(table, rs)
    return Analysis.from_rows(rows, b.result())


RAW_INJECTIONS = re.compile(r"<script>alert|<img src=x|<a href=\"javascript|<b>ns")


def _without_plotlyjs(page: str) -> str:
    """The page minus the inline plotly.js bundle (which has its own, harmless, markup strings)."""
    start = page.find("<script>", page.find("<head>"))
    end = page.find("</script>", start)
    head_script = page[start:end]
    assert len(head_script) > 1_000_000, "plotly.js should be inline in <head>"
    return page[:start] + page[end:]


@pytest.fixture(scope="module")
def evil_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("plotly")
    path = tmp_path_factory.mktemp("html") / "report.html"
    render_html(evil_analysis(), str(path), title="capture <script>alert(9)</script>")
    return path


def test_report_is_self_contained_and_escaped(evil_report: Path) -> None:
    page = evil_report.read_text(encoding="utf-8")
    rest = _without_plotlyjs(page)
    # No traffic string survives as markup, in the HTML or inside the figure JSON.
    assert not RAW_INJECTIONS.search(rest), RAW_INJECTIONS.search(rest)
    # Exactly the scripts we wrote: plotly.js plus one per figure; none opened by traffic.
    n_plots = rest.count('class="plot"')
    assert n_plots >= 7
    assert rest.count("<script") == n_plots
    # It did render the texts, escaped.
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in rest  # handshake detail / close reason
    assert "&quot;&gt;&lt;img src=x onerror=alert(5)&gt;" in rest  # text preview
    assert "capture &lt;script&gt;alert(9)&lt;/script&gt;" in rest  # title
    assert "&lt;script&gt;alert(8)&lt;/script&gt;" in rest  # reader warning detail
    # Figure JSON: the event names are HTML-escaped (shown as text by plotly) and JSON-escaped.
    assert "\\u0026lt;script\\u0026gt;alert(1)" in rest
    # No network needed: no external script or stylesheet.
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=\"?https?:", page)
    assert "cdn.plot.ly" not in rest
    # Bounded: plotly.js (~4-5 MB) plus well under 1 MB of our own.
    assert len(rest.encode()) < 1_000_000


def test_script_json_cannot_close_the_script() -> None:
    text = script_json({"x": ["</script><script>alert(1)</script>", "a & b", "\u2028"]})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"x": ["</script><script>alert(1)</script>", "a & b", "\u2028"]}
    assert plot_text("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"
    assert plot_text("a\x1b[31mb") == "a\\x1b[31mb"


def test_points_are_capped_on_large_tables(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    rows = synthetic_rows(n_sessions=3000, messages=2)
    a = Analysis.from_rows(rows, summary={})
    small = tmp_path / "small.html"
    render_html(a, str(small), max_points=100, max_rows=50)
    rest = _without_plotlyjs(small.read_text(encoding="utf-8"))
    figs = [json.loads(m) for m in re.findall(r"var f=(\{.*?\});Plotly", rest)]
    boxes = [t for f in figs for t in f["data"] if t["type"] == "box"]
    assert boxes and all(len(t["x"]) <= 100 for t in boxes)
    assert sum(len(t["x"]) for t in boxes) < 3000  # the tcp layer alone has 3000 values
    assert "The 50 sessions with the most packets, of 3,000." in rest
    sessions_table = re.search(r'<table class="sessions">.*?</table>', rest)
    assert sessions_table and sessions_table.group(0).count("<tr>") == 51  # header + 50
    assert rest.count("<tr>") < 1000  # drill-down: 20 sessions, <= 20 rows per table


def test_without_plotly_tables_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly -> ImportError
    path = tmp_path / "report.html"
    render_html(evil_analysis(), str(path))
    page = path.read_text(encoding="utf-8")
    assert "plotly is not installed" in page
    assert "<script" not in page
    assert "<table" in page and "session 2:" in page
    assert len(page) < 500_000
    assert not RAW_INJECTIONS.search(page)


def test_empty_analysis_renders(tmp_path: Path) -> None:
    path = tmp_path / "empty.html"
    render_html(Analysis(), str(path))
    page = path.read_text(encoding="utf-8")
    assert "No sessions." in page
    assert "Plotly.newPlot" not in page  # no data, no plots, no 4 MB bundle
    assert len(page) < 50_000


# -- terminal -------------------------------------------------------------------------------------


def test_safe_text_strips_terminal_controls() -> None:
    s = safe_text("a\x1b]0;pwned\x07b\rc\x9b31md\u202eevil\x00")
    assert not re.search("[\x00-\x1f\x7f-\x9f\u202e]", s)
    assert s == "a\\x1b]0;pwned\\x07b\\x0dc\\x9b31md\\u202eevil\\x00"
    assert safe_text("x" * 500).endswith("...") and len(safe_text("x" * 500)) == 203
    assert safe_text(None) == "" and safe_text(42) == "42"


def test_print_summary_plain_and_safe() -> None:
    rows = synthetic_rows(events=("message", "\x1b[2J\x1b[Hcleared"))
    b = SummaryBuilder()
    b.add_file("cap.pcapng", 100, 2000, {"ETHERNET": 100})
    b.add_warning("snaplen-cut", 2, "cap.pcapng: \x1b[31mred")
    for table, rs in rows.items():
        b.add(table, rs)
    a = Analysis.from_rows(rows, b.result())
    out = io.StringIO()
    print_summary(a, file=out)  # StringIO is not a TTY: plain
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert "\\x1b[2J\\x1b[Hcleared" in text
    assert re.search(r"socketio\s+3", text)
    assert re.search(r"socketio\s+3 \(0 failed\)\s+p50", text)  # the count once, not again as n=3
    assert "frames by opcode" in text and "text " in text
    assert "snaplen-cut" in text and "2" in text
    assert re.search(r"event /chat\s+message\s+9", text)
    colored = io.StringIO()
    print_summary(a.summary, file=colored, color=True)
    ctext = colored.getvalue()
    assert "\x1b[" in ctext  # click styles
    # The only escapes are click's SGR sequences, never traffic's.
    assert "\x1b[2J" not in ctext
    assert set(re.findall(r"\x1b\[[0-9;]*m", ctext)) and not re.search(r"\x1b(?!\[[0-9;]*m)", ctext)


# -- headless browser -----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium with ``args`` (a profile under ``tmp``, no network chatter)."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp / 'profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, timeout=180, check=False)


def png_pixels(path: Path) -> tuple[int, int, list[bytes], int]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG: (width, height, rows, bytes per pixel)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6) and body[12] == 0
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


@needs_chromium
def test_screenshot_shows_plots(evil_report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    res = chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", "--virtual-time-budget=5000", evil_report.as_uri()
    )
    assert shot.exists(), res.stderr.decode(errors="replace")[-2000:]
    width, height, rows, bpp = png_pixels(shot)
    assert (width, height) == (1400, 3000)
    # Count coloured pixels (plot bars/boxes use saturated colours; text is grey/black).
    coloured = 0
    nonwhite = 0
    for row in rows[::4]:
        for x in range(0, width * bpp, bpp * 4):
            r, g, b = row[x], row[x + 1], row[x + 2]
            if r < 245 or g < 245 or b < 245:
                nonwhite += 1
            if max(r, g, b) - min(r, g, b) > 60:
                coloured += 1
    sampled = (height // 4) * (width // 4)
    assert nonwhite > sampled * 0.03, "the page looks blank"
    assert coloured > sampled * 0.01, "no coloured plot marks: did plotly draw?"


@needs_chromium
def test_dom_has_plots_and_no_injected_elements(evil_report: Path, tmp_path: Path) -> None:
    res = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", evil_report.as_uri())
    dom = res.stdout.decode("utf-8", errors="replace")
    assert "</html>" in dom, res.stderr.decode(errors="replace")[-2000:]
    assert dom.count('class="main-svg"') >= 7  # plotly drew its SVGs
    assert not re.search(r"<img\b", dom), "an injected <img> became an element"
    assert not re.search(r"<a\s+href=\"javascript", dom)
    # The names were rendered as text inside plotly's SVG and the tables.
    assert "&lt;img src=x onerror=alert(1)&gt;</text>" in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</text>" in dom
    assert "<b>ns</b>" not in dom
    # Exactly our scripts, none from traffic (plotly adds none).
    scripts = re.findall(r"<script\b", dom)
    n_plots = len(re.findall(r'<div id="plot-\d+"', dom))
    assert n_plots >= 7 and len(scripts) == n_plots + 1
    # And nothing tried to load from the network.
    assert "ERR_NAME_NOT_RESOLVED" not in res.stderr.decode(errors="replace")



def test_one_slow_chain_does_not_squash_the_others(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    rows = synthetic_rows(n_sessions=30)
    rows["handshakes"] = [
        h._replace(duration_ms=900.0) if h.session_id == 4 and h.layer == "websocket" else h
        for h in rows["handshakes"]
    ]
    path = tmp_path / "r.html"
    render_html(Analysis.from_rows(rows, {}), str(path))
    figs = {
        m.group(1): json.loads(m.group(2))
        for m in re.finditer(r'<h2 id="([\w-]+)">.*?var f=(\{.*?\});Plotly', path.read_text())
    }
    chain = figs["chain"]["layout"]
    lo, hi = chain["xaxis"]["range"]
    assert lo == 0 and 3 < hi < 20  # typical chains end within ~10 ms
    labels = [b["label"] for b in chain["updatemenus"][0]["buttons"]]
    assert labels[0] == "typical chains" and re.fullmatch(r"all \(to 90\d ms\)", labels[1])
    # Without an outlier: no zoom.
    render_html(Analysis.from_rows(synthetic_rows(n_sessions=30), {}), str(path))
    m = re.search(r'<h2 id="chain">.*?var f=(\{.*?\});Plotly', path.read_text())
    assert m and "range" not in json.loads(m.group(1))["layout"].get("xaxis", {})


def test_timestamps_beyond_datetime_render(tmp_path: Path) -> None:
    """A capture's timestamps may be anything (a pcapng with a 1 s resolution and a 64-bit
    count): times past what datetime can show are written as seconds, never a traceback."""
    from dissect.records import ts_columns

    rows = {
        t: [r._replace(**{c: 10**28 for c in ts_columns(type(r)) if getattr(r, c) is not None}) for r in rs]
        for t, rs in synthetic_rows(n_sessions=3).items()
    }
    path = tmp_path / "r.html"
    render_html(Analysis.from_rows(rows, {}), str(path))
    page = path.read_text(encoding="utf-8")
    assert "Plotly.newPlot" in page and "1e+19 s" in page


def test_rows_name_their_wireshark_frames(tmp_path: Path) -> None:
    """Where report.html lists rows, each names the packet (Wireshark's frame number) that
    completed it, and each session its tcp.stream."""
    from click.testing import CliRunner

    import dissect
    from dissect.cli import main as cli_main

    cap = str(Path(__file__).resolve().parent.parent / "captures" / "sio4_websocket.pcap")
    res = CliRunner().invoke(cli_main, ["report", cap, "--out", str(tmp_path), "-q", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "report.html").read_text()
    a = dissect.analyze(cap)
    first = a.sio_packets[a.sio_packets.session_id == 1].iloc[0]
    assert f">#{int(first.frame)}<" in page
    http = a.http.iloc[0]
    assert f">#{int(http.frame_request)}<" in page and f">#{int(http.frame_response)}<" in page
    for s in a.sessions.itertuples():
        assert f"tcp.stream {s.tcp_stream}, first packet #{s.frame_first}" in page
