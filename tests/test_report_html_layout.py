"""report.html as a user sees it, on captures of the corpus: what the plots put where (read from the
DOM headless Chromium leaves after plotly drew) and how the figures are set up."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

import dissect
from dissect.report.html import render_html
from dissect.report.html.activity import TIME_BUCKETS, time_bucket
from tests.test_report_html import CHROMIUM, chromium, needs_chromium

CAPTURES = Path(__file__).resolve().parent.parent / "captures"

# name -> (capture, TLS key log or None)
CORPUS = {
    "polling": ("sio4_polling_upgrade.pcapng", None),
    "websocket": ("sio4_websocket.pcap", None),
    "tls": ("tls13_sio4_polling_upgrade.pcapng", "tls13_sio4_polling_upgrade.keys"),
    "multi": ("ws_multi.pcapng", None),
    "sockets": ("sio4_disconnects.pcapng", None),  # the sockets' timeline and table
}

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """report.html of each capture of :data:`CORPUS`, as ``dissect report`` writes it."""
    pytest.importorskip("plotly")
    out = tmp_path_factory.mktemp("corpus-html")
    found = {}
    for name, (cap, keys) in CORPUS.items():
        a = dissect.analyze(CAPTURES / cap, tls_keylog=CAPTURES / keys if keys else None)
        path = out / f"{name}.html"
        render_html(a, str(path))
        found[name] = path
    return found


@pytest.fixture(scope="module")
def doms(pages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The DOM of each page once Chromium ran plotly (1400 px wide, as on a laptop)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    tmp = tmp_path_factory.mktemp("chromium")
    return {name: laid_out(path, tmp, 1400) for name, path in pages.items()}


def laid_out(page: Path, tmp: Path, width: int) -> str:
    """The DOM of ``page`` once Chromium ran plotly at ``width`` px, with the line breaks of every
    table cell checked (:data:`BREAKS_JS`, its verdict in ``<pre id="broken-words">``)."""
    probe = tmp / f"{page.stem}-{width}.html"
    probe.write_bytes(page.read_bytes().replace(b"</body>", BREAKS_JS.encode() + b"</body>"))
    res = chromium(tmp, f"--window-size={width},3000", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    dom = res.stdout.decode("utf-8", errors="replace")
    assert "</html>" in dom and 'id="broken-words"' in dom, res.stderr.decode(errors="replace")[-2000:]
    return dom


def broken_words(dom: str) -> list[str]:
    """The cells :data:`BREAKS_JS` found broken inside a word."""
    m = re.search(r'<pre id="broken-words">(.*?)</pre>', dom)
    assert m
    return list(json.loads(html.unescape(m.group(1))))


def figures_of(page: Path) -> dict[str, dict]:
    """anchor -> plotly figure (its JSON) of every plot on the page."""
    text = page.read_text(encoding="utf-8")
    found = re.finditer(r'<h2 id="([\w-]+)">.*?var f=(\{.*?\});Plotly', text)
    return {m.group(1): json.loads(m.group(2)) for m in found}


def plot_sections(dom: str) -> dict[str, str]:
    """anchor -> the DOM of that plot (from its heading to the next)."""
    heads = list(re.finditer(r'<h2 id="([\w-]+)">', dom))
    return {
        m.group(1): dom[m.start() : heads[i + 1].start() if i + 1 < len(heads) else len(dom)]
        for i, m in enumerate(heads)
        if 'class="main-svg"' in dom[m.start() : heads[i + 1].start() if i + 1 < len(heads) else len(dom)]
    }


def bars(section: str) -> list[list[Rect]]:
    """The rectangles plotly drew for each bar trace, trace by trace (plot-area coordinates)."""
    traces = re.split(r'<g class="trace bars"', section)[1:]
    out = []
    for t in traces:
        rects = []
        for m in re.finditer(r'<path d="M([\d.]+),([\d.]+)V([\d.]+)H([\d.]+)V[\d.]+Z"', t):
            x0, y0, y1, x1 = (float(v) for v in m.groups())
            rects.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        out.append(rects)
    return out


def _overlap(a: Rect, b: Rect) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > 0.5 and min(a[3], b[3]) - max(a[1], b[1]) > 0.5


@needs_chromium
@pytest.mark.parametrize("name", list(CORPUS))
def test_every_layer_of_a_chain_is_visible(doms: dict[str, str], pages: dict[str, Path], name: str) -> None:
    """No layer's bar is drawn under another's: a websocket handshake and the Engine.IO open that
    starts at the same GET each have their own row in the session."""
    traces = bars(plot_sections(doms[name])["chain"])
    layers = [t["name"] for t in figures_of(pages[name])["chain"]["data"]]
    assert len(traces) == len(layers) >= 2
    for i, rects in enumerate(traces):
        assert rects and all(r[3] - r[1] >= 4 for r in rects), f"{layers[i]}: a bar too thin to see"
        for j in range(i + 1, len(traces)):
            hidden = [(a, b) for a in rects for b in traces[j] if _overlap(a, b)]
            assert not hidden, f"{layers[i]} and {layers[j]} bars drawn over each other: {hidden[:2]}"


@pytest.mark.parametrize("name", list(CORPUS))
def test_chain_layers_top_to_bottom_in_chain_order(pages: dict[str, Path], name: str) -> None:
    from dissect.output.summary import LAYERS

    fig = figures_of(pages[name])["chain"]
    layers = [t["name"] for t in fig["data"]]
    assert layers == [x for x in LAYERS if x in layers]
    # the y axis is reversed: the first trace of a group (tcp) is the top row of its session
    assert fig["layout"]["yaxis"]["autorange"] == "reversed" and fig["layout"]["barmode"] == "group"
    if name == "tls":  # tcp -> tls -> websocket -> engineio -> socketio on a wss session
        assert layers == ["tcp", "tls", "websocket", "engineio", "socketio"]


@needs_chromium
@pytest.mark.parametrize("name", list(CORPUS))
def test_legends_above_the_plot_area(doms: dict[str, str], name: str) -> None:
    """Every legend is drawn above its plot area, so it can meet no axis title nor tick label
    (below the plot it ran into the time axis's title)."""
    sections = plot_sections(doms[name])
    assert len(sections) >= 4
    for anchor, sec in sections.items():
        area = re.search(r'<rect class="nsewdrag drag"[^>]*?x="([\d.]+)" y="([\d.]+)"', sec)
        assert area, anchor
        top = float(area.group(2))
        legend = re.search(r'<g class="legend"[^>]*transform="translate\(([\d.]+),([\d.]+)\)">'
                           r'<rect class="bg"[^>]*height="([\d.]+)"', sec)
        if legend is None:
            continue  # a plot without a legend (one trace per category)
        bottom = float(legend.group(2)) + float(legend.group(3))
        assert bottom <= top, f"{anchor}: legend ends at y={bottom}, the plot starts at {top}"


def test_time_buckets_are_clock_units() -> None:
    names = [n for _w, n in TIME_BUCKETS]
    assert {"1 ms", "10 ms", "100 ms", "1 s", "10 s", "1 min"} <= set(names)
    widths = [w for w, _n in TIME_BUCKETS]
    assert widths == sorted(widths)
    assert time_bucket(0.1306, 200) == (0.001, "1 ms")  # 0.65 ms per bin -> 1 ms
    assert time_bucket(1.806, 200) == (0.01, "10 ms")
    assert time_bucket(3600, 200) == (30.0, "30 s")
    assert time_bucket(0.0, 200) == (0.001, "1 ms")  # one instant
    assert time_bucket(float("nan"), 200) == (0.001, "1 ms")
    w, n = time_bucket(1e12, 200)
    assert n.endswith(" years") and w * 200 >= 1e12


@pytest.mark.parametrize("name", list(CORPUS))
def test_over_time_counts_per_clock_unit(pages: dict[str, Path], name: str) -> None:
    """The y axis says "per 10 ms" (a unit of the clock), and the x values step by that width
    from a multiple of it."""
    import datetime as dt

    fig = figures_of(pages[name])["over-time"]
    title = fig["layout"]["yaxis"]["title"]["text"]
    m = re.fullmatch(r"frames, messages, packets per (\d+ (?:µs|ms|s|min|h|d))", title)
    assert m, title
    width = dict((n, w) for w, n in TIME_BUCKETS)[m.group(1)]
    xs = [dt.datetime.fromisoformat(x).replace(tzinfo=dt.timezone.utc).timestamp() for x in fig["data"][0]["x"]]
    steps = {round(b - a, 6) for a, b in zip(xs, xs[1:], strict=False)}
    assert steps == {round(width, 6)}
    assert round(xs[0] * 1e6) % round(width * 1e6) == 0  # on the clock: .000, .010, ...
    # every row counted once: frames c2s + s2c add up to the capture's frames
    frames = sum(sum(t["y"][:-1]) for t in fig["data"] if t["name"].startswith("frames "))
    a = dissect.analyze(CAPTURES / CORPUS[name][0],
                        tls_keylog=CAPTURES / CORPUS[name][1] if CORPUS[name][1] else None)
    assert frames == len(a.ws_frames)
    # small counts: whole-number ticks
    top = max(max(t["y"]) for t in fig["data"])
    assert top > 8 or fig["layout"]["yaxis"].get("dtick") == 1


# -- tables -----------------------------------------------------------------------------------------

# Appended to a copy of a page: every table cell's line breaks, as laid out. A header may wrap only
# at a space; a number cell (class n) not at all; another cell not between two letters or digits
# (JSON may wrap after its punctuation); a cell with a long token (class t) anywhere.
BREAKS_JS = r"""<script>
document.querySelectorAll('details').forEach(function (d) { d.open = true; });
var bad = [];
document.querySelectorAll('th, td').forEach(function (cell) {
  if (cell.classList.contains('t')) return;
  var number = cell.tagName === 'TD' && cell.classList.contains('n');
  var walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  var prevTop = null, prevCh = ' ';
  for (var n = walker.nextNode(); n; n = walker.nextNode()) {
    for (var i = 0; i < n.data.length; i++) {
      var ch = n.data[i], r = document.createRange();
      r.setStart(n, i); r.setEnd(n, i + 1);
      var rects = r.getClientRects();
      if (rects.length && rects[0].width > 0) {
        var top = rects[0].top;
        var inWord = cell.tagName === 'TH' ? !/\s/.test(prevCh) && !/\s/.test(ch)
                                            : /\w/.test(prevCh) && /\w/.test(ch);
        if (prevTop !== null && top > prevTop + 2 && (number || inWord)) {
          bad.push(cell.tagName + ' ' + JSON.stringify(cell.textContent));
        }
        prevTop = top;
      }
      prevCh = ch;
    }
  }
});
var out = document.createElement('pre');
out.id = 'broken-words';
out.textContent = JSON.stringify(bad);
document.body.appendChild(out);
</script>"""


@needs_chromium
def test_no_header_or_number_breaks_inside_a_word(doms: dict[str, str], pages: dict[str, Path],
                                                  tmp_path: Path) -> None:
    """Headers wrap only between words ("session", never "sessi / on"); numbers and times never
    wrap: laid out by Chromium at a laptop's width and at a narrow one."""
    for name, dom in doms.items():
        assert broken_words(dom) == [], f"{name} at 1400 px"
    for name, page in pages.items():
        assert broken_words(laid_out(page, tmp_path, 900)) == [], f"{name} at 900 px"


def _cells(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return [html.unescape(re.sub(r"<wbr>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", text)]


@pytest.mark.parametrize("name", list(CORPUS))
def test_numbers_are_rounded(pages: dict[str, Path], name: str) -> None:
    """No cell holds a float as stored (0.026378, 3.98005): durations in ms to three significant
    digits, counts with thousands separators, times as UTC."""
    cells = _cells(pages[name])
    assert cells
    unrounded = [c for c in cells if re.fullmatch(r"-?[\d,]*\.\d{4,}", c)
                 and len(c.replace(",", "").replace(".", "").lstrip("-0")) > 3]
    assert not unrounded, unrounded[:5]
    for c in cells:
        if re.fullmatch(r"[\d,]+", c) and len(c.replace(",", "")) > 3:
            assert c == f"{int(c.replace(',', '')):,}", c  # 35,860, never 35860
    text = pages[name].read_text(encoding="utf-8")
    table = re.search(r'<h2 id="handshake-table">.*?</table>', text)
    assert table
    for row in re.findall(r"<tr>(.*?)</tr>", table.group(0))[1:]:
        ms = re.findall(r"<td class=n>([^<]*)</td>", row)[2:]
        assert len(ms) == 4
        for v in ms:  # three significant digits below 1 s
            digits = v.replace(",", "").replace(".", "").lstrip("0")
            assert len(digits) <= 3 or float(v.replace(",", "")) >= 1000, v
    # timestamps read as UTC times, never seconds since the epoch
    assert not [c for c in cells if re.fullmatch(r"1[5-9]\d{8}(\.\d+)?", c)]
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", c) for c in cells)


def test_ms_and_count_text() -> None:
    from dissect.report.html.text import count_text, ms_text

    cases = {0.026378: "0.0264", 0.0077: "0.00770", 3.98005: "3.98", 10.54: "10.5", 99.96: "100",
             752.293351: "752", 1234.5: "1,234", 0: "0", -2.345: "-2.35"}
    assert {v: ms_text(v) for v in cases} == cases
    assert ms_text(None) == ms_text(float("nan")) == ""
    assert count_text(35860) == "35,860" and count_text(3.0) == "3" and count_text(None) == ""


# -- anomalies and TLS ------------------------------------------------------------------------------


def _section(page: Path, anchor: str) -> str:
    text = page.read_text(encoding="utf-8")
    m = re.search(rf'<h2 id="{anchor}">(.*?)(?=<h2 |</body>)', text, re.S)
    assert m, anchor
    return m.group(1)


def _rows(table_html: str) -> list[list[str]]:
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r)]
            for r in re.findall(r"<tr>(.*?)</tr>", table_html)]


def _kinds_in_code() -> set[str]:
    """The anomaly and warning tags the dissectors name as constants (``X = "kebab-case"``)."""
    import importlib

    kinds = set()
    for name in ("dissect.protocols.websocket", "dissect.protocols.engineio.packets",
                 "dissect.protocols.socketio", "dissect.protocols.registry", "dissect.capture.reader"):
        for k, v in vars(importlib.import_module(name)).items():
            if k.isupper() and isinstance(v, str) and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", v):
                kinds.add(v)
    return kinds


def test_every_kind_has_a_meaning(tmp_path: Path) -> None:
    """Every anomaly and warning kind in the corpus's reviewed reports, in a cut capture, and among
    the dissectors' tag constants has a one-line meaning for the page."""
    from dissect.output.anomalies import anomaly_kind, split_anomalies
    from dissect.report.html.kinds import MEANINGS

    seen: set[str] = set()
    for summary in (Path(__file__).resolve().parent.parent / "reports").glob("*/summary.json"):
        s = json.loads(summary.read_text())
        seen |= {k for counts in s["anomalies"]["by_table"].values() for k in counts}
        seen |= set(s["warnings"]["by_kind"])
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((CAPTURES / "sio4_websocket.pcap").read_bytes()[:9000])
    a = dissect.analyze(cut)
    for t in ("sessions", "http", "ws_frames", "ws_messages", "sio_packets"):
        seen |= {anomaly_kind(x) for cell in a.table(t)["anomaly"].dropna() for x in split_anomalies(cell)}
    seen |= set(a.summary["warnings"]["by_kind"])
    assert {"pong-late", "truncated-file"} <= seen
    assert not seen - set(MEANINGS)
    assert not _kinds_in_code() - set(MEANINGS)
    assert all(m and "\n" not in m and len(m) <= 120 for m in MEANINGS.values())


def test_anomaly_table_kind_table_count_meaning(tmp_path: Path) -> None:
    """The anomalies: one row per kind and table with its count (summary.json's) and meaning; the
    rows themselves below, each anomaly cell once."""
    pytest.importorskip("plotly")
    from dissect.report.html.kinds import MEANINGS

    cut = tmp_path / "cut.pcap"
    cut.write_bytes((CAPTURES / "sio4_websocket.pcap").read_bytes()[:9000])
    a = dissect.analyze(cut)
    page = tmp_path / "report.html"
    render_html(a, str(page))
    sec = _section(page, "anomaly-kinds")
    tables = re.findall(r"<table>.*?</table>", sec)
    kinds = _rows(tables[0])
    assert kinds[0] == ["kind", "table", "count", "meaning"]
    expected = sorted([k, t, f"{n:,}", MEANINGS[k]] for t, c in a.summary["anomalies"]["by_table"].items()
                      for k, n in c.items())
    assert sorted(kinds[1:]) == expected and expected
    rows = _rows(tables[1])
    assert rows[0] == ["table", "session", "index", "frame", "anomaly"]
    assert len(rows) - 1 == sum(len(a.table(t)["anomaly"].dropna().loc[lambda s: s != ""])
                                for t in ("sessions", "http", "ws_frames", "ws_messages", "sio_packets"))
    # the reader's warning has its meaning too
    files = _section(page, "files")
    assert MEANINGS["truncated-file"] in html.unescape(files)


@pytest.mark.parametrize("cap, keys", [("tls13_sio4_polling_upgrade.pcapng", "tls13_sio4_polling_upgrade.keys"),
                                       ("tls_nokeys.pcap", None), ("sio4_websocket.pcap", None)])
def test_tls_section(tmp_path: Path, cap: str, keys: str | None) -> None:
    """TLS sessions by version, decrypted or not (as the peers recorded: their versions, and
    whether the key log was kept), and why not."""
    a = dissect.analyze(CAPTURES / cap, tls_keylog=CAPTURES / keys if keys else None)
    page = tmp_path / "report.html"
    render_html(a, str(page))
    truth = json.loads((CAPTURES / cap.rsplit(".", 1)[0]).with_suffix(".truth.json").read_text())
    tls = truth.get("tls")
    if not tls:
        assert '<h2 id="tls">' not in page.read_text(encoding="utf-8")
        return
    versions: dict[str, int] = {}
    for c in tls["connections"]:
        v = c["version"].replace("TLSv", "TLS ")
        versions[v] = versions.get(v, 0) + 1
    sec = _section(page, "tls")
    rows = _rows(re.findall(r"<table>.*?</table>", sec)[0])
    assert rows[0] == ["version", "sessions", "decrypted", "not decrypted"]
    shipped = tls["keys"]["shipped"]
    assert sorted(rows[1:]) == sorted([v, str(n), str(n if shipped else 0), str(0 if shipped else n)]
                                      for v, n in versions.items())
    assert ("--tls-keylog" in sec) == (not shipped)
    assert ("Why not decrypted" in sec) == (not shipped)


@pytest.mark.parametrize("name", list(CORPUS))
def test_count_axes_have_whole_ticks(pages: dict[str, Path], name: str) -> None:
    """A count axis never reads 0.5 messages: whole-number steps when the counts are small."""
    figs = figures_of(pages[name])
    axes = {"message-sizes": "yaxis", "opcodes": "yaxis", "events": "xaxis", "anomalies": "xaxis",
            "over-time": "yaxis"}
    checked = 0
    for anchor, axis in axes.items():
        if anchor in figs:
            ax = figs[anchor]["layout"][axis]
            assert ax.get("dtick") == 1 or ax.get("tickformat") == ",d", (anchor, ax)
            checked += 1
    assert checked >= 2


def test_socket_timeline_and_fanout_plots(tmp_path: Path) -> None:
    """report.html draws each socket from its connect to its end in the colour of its reason, and
    one point per broadcast at the number of sockets it reached (the sio tables' own rows)."""
    from tests.test_cli_ux import invoke

    out = tmp_path / "life"
    caps = [str(CAPTURES / "sio4_ping_timeout.pcap"), str(CAPTURES / "sio4_disconnects.pcapng")]
    assert invoke("report", *caps, "--out", str(out), "-q")[0] == 0
    figs = figures_of(out / "report.html")
    life = figs["sio-sockets"]
    a = dissect.analyze(caps)
    reasons = a.sio_sockets.disconnect_reason.astype(object).where(a.sio_sockets.disconnect_reason.notna(), "unknown")
    counts = reasons.value_counts().to_dict()
    assert {t["name"] for t in life["data"]} == {f"{r} ({n})" for r, n in counts.items()}  # legend: counts
    drawn = {t["legendgroup"]: sum(1 for x in t["x"] if x is None) for t in life["data"]}  # one gap per socket
    assert drawn == counts
    assert "sio-broadcasts" not in figs  # these captures have none

    out = tmp_path / "fan"
    assert invoke("report", str(CAPTURES / "sio4_broadcasts.pcap"), "--out", str(out), "-q")[0] == 0
    fan = figures_of(out / "report.html")["sio-broadcasts"]
    assert fan["data"][0]["y"] == [4, 2, 3]  # io.emit, io.to("room1").emit, socket.broadcast.emit


@needs_chromium
def test_socket_lines_as_drawn(doms: dict[str, str], pages: dict[str, Path]) -> None:
    """In the browser, sio4_disconnects' timeline has one horizontal line per socket the server
    recorded (seven, each visibly long), and a legend entry per reason with its count."""
    truth = json.loads((CAPTURES / "sio4_disconnects.truth.json").read_text())["sockets"]
    sec = plot_sections(doms["sockets"])["sio-sockets"]
    legend = re.findall(r'class="legendtext"[^>]*>([^<]*)<', sec)
    reasons: dict[str, int] = {}
    for s in truth:
        reasons[s["server_disconnect_reason"]] = reasons.get(s["server_disconnect_reason"], 0) + 1
    assert sorted(legend) == sorted(f"{r} ({n})" for r, n in reasons.items())
    plot_area = sec[:sec.index('class="legend"')]
    lines = re.findall(r'<path class="js-line" d="M([\d.]+),([\d.]+)L([\d.]+),([\d.]+)"', plot_area)
    assert len(lines) == len(truth)
    ys = set()
    for x0, y0, x1, y1 in lines:
        assert y0 == y1 and float(x1) - float(x0) > 50  # horizontal; every socket lived > 1 s of ~2 s
        ys.add(y0)
    assert len(ys) == len(truth)  # a row each
