"""The Socket.IO sockets and broadcasts as the reports show them: report.html's timeline, fan-out
plot and sockets table, ``dissect summary``'s sockets block and ``dissect check``'s socket gates,
on the corpus (compared with what the peers recorded, captures/*.truth.json) and on rows built
here (many sockets, many broadcasts, a report without the sio_broadcasts table)."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import dissect
from dissect.cli import main
from dissect.output.tables import Analysis
from dissect.report.html import render_html
from dissect.report.html.sockets import MAX_SOCKETS, chosen_sockets, fanout, socket_timeline
from dissect.report.html.tables import anomaly_rows, sockets_section
from dissect.report.terminal import print_summary
from tests.test_report_html_layout import figures_of
from tests.test_sio_sockets import PYTHON_WORDS

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
BASE: dict[str, Any] = {"height": 420}


def truth(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / f"{name}.truth.json").read_text())


def reason_counts(name: str) -> Counter[str]:
    """The server's reasons, in the socket.io server's words (python-socketio names two its own way)."""
    return Counter(PYTHON_WORDS.get(s["server_disconnect_reason"], s["server_disconnect_reason"])
                   for s in truth(name)["sockets"])


def legend(fig: Any) -> dict[str, int]:
    """reason -> the count its legend entry gives ("ping timeout (2)")."""
    out = {}
    for t in fig["data"] if isinstance(fig, dict) else fig.to_dict()["data"]:
        m = re.fullmatch(r"(.+) \(([\d,]+)\)", t["name"])
        assert m, t["name"]
        out[m.group(1)] = int(m.group(2).replace(",", ""))
    return out


def drawn(fig: Any) -> dict[str, int]:
    """reason -> sockets drawn (one gap after each socket's line)."""
    data = fig["data"] if isinstance(fig, dict) else fig.to_dict()["data"]
    return {t["name"].rsplit(" (", 1)[0]: sum(1 for x in t["x"] if x is None) for t in data}


# -- report.html on the corpus --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sio4_ping_timeout", "sio4_disconnects", "sio4_recovery", "sio_python_disconnects"])
def test_timeline_draws_every_socket_in_the_colour_of_the_servers_reason(name: str) -> None:
    """One line per socket the server recorded, named by the reason the server gave it."""
    cap = next(CAPTURES.glob(f"{name}.pcap*"))
    a = dissect.analyze(str(cap))
    plot = socket_timeline(a, BASE)
    assert plot is not None
    anchor, title, fig = plot
    assert anchor == "sio-sockets" and "drawn" not in title  # all drawn: no cap
    want = dict(reason_counts(name))
    assert legend(fig) == want and drawn(fig) == want
    # each line runs from the socket's connect to its end, as the server recorded them (10 ms: the
    # wire against the server's clock, test_sio_sockets holds the finer checks)
    import datetime as dt

    lines = {}
    for t in fig.to_dict()["data"]:
        for i in range(0, len(t["x"]), 3):
            t0, t1 = (dt.datetime.fromisoformat(x).replace(tzinfo=dt.timezone.utc).timestamp()
                      for x in t["x"][i:i + 2])
            lines[t["text"][i].split(", session")[0]] = (t0, t1)  # "/ socket S, Engine.IO sid E"
    assert len(lines) == len(truth(name)["sockets"])
    for s in truth(name)["sockets"]:
        mine = [v for k, v in lines.items() if k.startswith(f"{s['namespace']} socket ")
                and k.endswith(f"Engine.IO sid {s['eio_sid']}")]
        assert len(mine) == 1, s["label"]
        # python-engineio notices a ping timeout up to 0.5 s after the wire shows it (test_sio_sockets)
        late = 0.5 if name.startswith("sio_python") and s["server_disconnect_reason"] == "ping timeout" else 0.01
        assert abs(mine[0][0] - s["ts_connect"]) < 0.01, s["label"]
        assert abs(mine[0][1] - s["ts_disconnect"]) < late, s["label"]


def test_hover_names_the_socket_and_its_heartbeat() -> None:
    a = dissect.analyze(str(CAPTURES / "sio4_ping_timeout.pcap"))
    plot = socket_timeline(a, BASE)
    assert plot is not None
    texts = [x for t in plot[2].to_dict()["data"] for x in t["text"] if x]
    for s in truth("sio4_ping_timeout")["sockets"]:
        mine = [x for x in texts if s["socket_sid"] in x]
        assert mine, s["label"]
        text = mine[0]
        assert s["eio_sid"] in text and s["server_disconnect_reason"] in text
        assert f"by {'server' if s['server_disconnect_reason'] == 'ping timeout' else 'client'}" in text
        assert re.search(r"pings \d+, worst pong [\d.]+ ms", text)


def test_recovery_in_the_sockets_table_and_hover() -> None:
    """sio4_recovery: R1's second socket recovered with the 4 events emitted while it was away
    replayed; R2 came back too late (not recovered)."""
    a = dissect.analyze(str(CAPTURES / "sio4_recovery.pcap"))
    html = sockets_section(a, 200)
    rows = re.findall(r"<tr>(.*?)</tr>", html)[1:]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows]
    assert len(cells) == len(truth("sio4_recovery")["sockets"])
    recovered = {(c[3], c[1]): c[13] for c in cells}  # (Engine.IO sid, namespace) -> recovered cell
    assert len(recovered) == len(cells)
    for s in truth("sio4_recovery")["sockets"]:
        cell = recovered[(s["eio_sid"], s["namespace"])]
        if s["recovered"] is None:
            assert cell == ""
        elif s["recovered"]:
            assert cell == f"yes ({s['replayed_events']} replayed)" and s["replayed_events"] == 4
        else:
            assert cell == "no"
    assert "No broadcasts" in html
    plot = socket_timeline(a, BASE)
    assert plot is not None
    texts = [x for t in plot[2].to_dict()["data"] for x in t["text"] if x]
    assert sum("recovered: true, 4 events replayed" in x for x in texts) == 2  # both ends of the line
    assert sum("recovered: false" in x for x in texts) == 2


def test_page_of_the_broadcasts_capture(tmp_path: Path) -> None:
    """sio4_broadcasts.pcap: the fan-out plot has a point per broadcast the server made, at the
    number of clients it was meant for; the sockets section lists them."""
    pytest.importorskip("plotly")
    a = dissect.analyze(str(CAPTURES / "sio4_broadcasts.pcap"))
    page = tmp_path / "report.html"
    render_html(a, str(page))
    fig = figures_of(page)["sio-broadcasts"]
    calls = [b for b in truth("sio4_broadcasts")["broadcasts"] if b["is_fanout"]]
    assert fig["data"][0]["y"] == [len(b["intended_socket_sids"]) for b in calls] == [4, 2, 3]
    assert all(b["event"] in t for b, t in zip(calls, fig["data"][0]["text"], strict=True))
    text = page.read_text()
    section = text[text.index('id="sio-socket-table"'):]
    assert "<h3>Broadcasts</h3>" in section
    for b in calls:
        assert f"<td>{b['event']}</td>" in section
    assert '<a href="#sio-socket-table">Socket.IO sockets</a>' in text


# -- rows built here: bounds, absent table -------------------------------------------------------


def many_sockets(n: int, troubled_at: list[int]) -> pd.DataFrame:
    t0 = 1.7e9 + np.arange(n) * 0.5
    reason = np.array(["client namespace disconnect"] * n, dtype=object)
    reason[troubled_at] = "ping timeout"
    return pd.DataFrame({
        "session_id": np.arange(n), "eio_sid": [f"e{i}" for i in range(n)], "namespace": "/",
        "socket_sid": [f"s{i}" for i in range(n)], "eio_version": 4, "transport": "websocket",
        "ts_connect": t0, "ts_disconnect": t0 + 2.0, "duration_ms": 2000.0, "connected": True,
        "disconnect_reason": reason, "disconnect_by": np.where(reason == "ping timeout", "server", "client"),
        "events_c2s": 1, "events_s2c": 1, "acks_unanswered": 0, "pings": 2, "max_pong_delay_ms": 1.0,
        "recovered": None, "replayed_events": pd.NA, "anomaly": None,
    })


def test_thousands_of_sockets_are_capped_troubled_first() -> None:
    """3,000 sockets, 7 ping timeouts late in the capture: 300 drawn, the 7 among them, the rest
    spread over the whole capture; the legend still counts all 3,000."""
    n, bad = 3000, [2500, 2600, 2700, 2800, 2900, 2950, 2999]
    a = Analysis(sio_sockets=many_sockets(n, bad), summary={})
    plot = socket_timeline(a, BASE)
    assert plot is not None
    _, title, fig = plot
    assert f"{MAX_SOCKETS} of 3,000 drawn" in title
    assert legend(fig) == {"client namespace disconnect": n - len(bad), "ping timeout": len(bad)}
    assert drawn(fig) == {"client namespace disconnect": MAX_SOCKETS - len(bad), "ping timeout": len(bad)}
    chosen = chosen_sockets(a.sio_sockets, MAX_SOCKETS)
    assert set(bad) <= set(chosen.session_id) and len(chosen) == MAX_SOCKETS
    assert chosen.session_id.min() == 0 and chosen.session_id.max() == n - 1  # the whole capture
    assert list(chosen.ts_connect) == sorted(chosen.ts_connect)
    assert fig.layout["height"] <= 1600
    # the table: at most max_rows, says how many there are
    html = sockets_section(a, 50)
    assert html.count("<tr>") == 51 and "50 of 3,000 sockets" in html
    assert html.count("ping timeout") >= len(bad)


def test_refused_and_still_open_sockets() -> None:
    """A refused CONNECT is a point at its request; a socket open at the end runs to the capture's end."""
    s = many_sockets(3, [])
    s.loc[1, ["connected", "disconnect_reason", "disconnect_by", "ts_disconnect"]] = [False, None, None, np.nan]
    s.loc[2, ["disconnect_reason", "ts_disconnect"]] = [None, np.nan]
    a = Analysis(sio_sockets=s, summary={"capture": {"ts_first": 1.7e9, "ts_last": 1.7e9 + 10}})
    plot = socket_timeline(a, BASE)
    assert plot is not None
    traces = {t["name"]: t for t in plot[2].to_dict()["data"]}
    assert set(traces) == {"client namespace disconnect (1)", "refused (1)", "unknown (1)"}
    refused, still = traces["refused (1)"], traces["unknown (1)"]
    assert refused["x"][0] == refused["x"][1] == "2023-11-14 22:13:20.500000"
    assert still["x"][1] == "2023-11-14 22:13:30.000000" and "still open" in still["text"][0]
    assert "<td>refused</td>" in sockets_section(a, 10)


def broadcasts(n: int) -> pd.DataFrame:
    """Rows with the columns of sio_broadcasts (REPORTS.md)."""
    t = 1.7e9 + np.arange(n) * 0.01
    recipients = np.full(n, 10)
    recipients[n // 3] = 2  # one that reached few
    recipients[n // 2] = 50
    spread = np.full(n, 0.5)
    spread[n - 2] = 80.0
    return pd.DataFrame({"broadcast_index": np.arange(n), "namespace": "/", "event": "tick", "ts_first": t,
                         "ts_last": t + spread / 1000, "spread_ms": spread, "recipients": recipients,
                         "payload_bytes": 40})


def test_fanout_of_built_rows_and_its_bound() -> None:
    a = Analysis(sio_broadcasts=broadcasts(12), summary={})
    plot = fanout(a, BASE, 5000)
    assert plot is not None
    fig = plot[2].to_dict()
    assert fig["data"][0]["y"] == list(broadcasts(12).recipients) and "drawn" not in plot[1]
    assert fig["data"][0]["marker"]["color"][10] == 80.0
    # 20,000 broadcasts, 500 points: an even sample, with the fewest, most and slowest kept
    big = broadcasts(20000)
    plot = fanout(Analysis(sio_broadcasts=big, summary={}), BASE, 500)
    assert plot is not None
    ys = plot[2].to_dict()["data"][0]["y"]
    assert len(ys) <= 500 and min(ys) == 2 and max(ys) == 50
    assert max(plot[2].to_dict()["data"][0]["marker"]["color"]) == 80.0
    assert "of 20,000 drawn" in plot[1]
    # the table lists the first max_rows
    html = sockets_section(Analysis(sio_broadcasts=big, summary={}), 30)
    assert "The first 30 broadcasts of 20,000" in html and html.count("<tr>") == 31


def test_a_report_without_the_broadcasts_table(tmp_path: Path) -> None:
    """A report of a dissect from before sio_broadcasts (no CSV, no summary block): the page has the
    sockets but no fan-out plot, and dissect summary says nothing about broadcasts."""
    pytest.importorskip("plotly")
    out = tmp_path / "r"
    assert CliRunner().invoke(main, ["report", str(CAPTURES / "sio4_broadcasts.pcap"), "--out", str(out), "-q",
                                     "--no-html"]).exit_code == 0
    (out / "sio_broadcasts.csv").unlink()
    summary = json.loads((out / "summary.json").read_text())
    del summary["sio_broadcasts"]
    (out / "summary.json").write_text(json.dumps(summary))
    a = Analysis.from_dir(str(out))
    assert len(a.sio_broadcasts) == 0 and len(a.sio_sockets) == 4
    page = tmp_path / "old.html"
    render_html(a, str(page))
    figs = figures_of(page)
    assert "sio-sockets" in figs and "sio-broadcasts" not in figs
    assert "No broadcasts" in page.read_text()
    text = io.StringIO()
    print_summary(summary, file=text)
    assert "Socket.IO sockets" in text.getvalue() and "  broadcast" not in text.getvalue()


def test_socket_anomalies_are_listed() -> None:
    s = many_sockets(2, [])
    s["anomaly"] = [None, "pong-late(ms=250.5)"]
    html = anomaly_rows(Analysis(sio_sockets=s, summary={}))
    assert "<td>sio_sockets</td>" in html and "pong-late(ms=250.5)" in html and "s1" in html


# -- dissect summary ------------------------------------------------------------------------------


def summary_text(*caps: str) -> str:
    res = CliRunner().invoke(main, ["summary", *(str(CAPTURES / c) for c in caps)])
    assert res.exit_code == 0, res.output
    out = res.output
    return out[out.index("Socket.IO sockets"):out.index("Anomalies")]


def counts_text(c: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


@pytest.mark.parametrize("name", ["sio4_ping_timeout.pcap", "sio4_disconnects.pcapng"])
def test_summary_counts_the_servers_reasons(name: str) -> None:
    block = summary_text(name)
    stem = name.split(".")[0]
    sockets = truth(stem)["sockets"]
    assert f"sockets               {len(sockets)}\n" in block
    assert f"why they ended        {counts_text(reason_counts(stem))}\n" in block
    pongs = [s["heartbeat"]["max_pong_delay_ms"] for s in sockets if s["heartbeat"]["max_pong_delay_ms"] is not None]
    m = re.search(r"worst pong delay      n=(\d+) .* max ([\d.]+) ms", block)
    assert m and int(m.group(1)) == len(pongs)
    assert abs(float(m.group(2)) - max(pongs)) < 0.5  # the server's clock vs the capture's
    assert "broadcasts            none" in block


def test_summary_recovery_and_broadcasts() -> None:
    block = summary_text("sio4_recovery.pcap")
    sockets = truth("sio4_recovery")["sockets"]
    yes = sum(s["recovered"] is True for s in sockets)
    no = sum(s["recovered"] is False for s in sockets)
    replayed = sum(s["replayed_events"] or 0 for s in sockets)
    assert (yes, no, replayed) == (1, 1, 4)
    assert f"recovery              {yes} recovered, {no} not; {replayed} events replayed\n" in block

    block = summary_text("sio4_broadcasts.pcap")
    calls = [b for b in truth("sio4_broadcasts")["broadcasts"] if b["is_fanout"]]
    assert f"broadcasts            {len(calls)} fan-outs\n" in block
    reached = sorted(len(b["received"]) for b in calls)
    assert f"max {reached[-1]}\n" in block.split("sockets reached")[1].split("\n")[0] + "\n"
    assert re.search(r"broadcast spread      p50 [\d.]+ ms .* max [\d.]+ ms", block)


# -- dissect check ------------------------------------------------------------------------------------

SOCKET_RULES = """
[[rule]]
name = "no ping timeout"
table = "sio_sockets"
where = "disconnect_reason == 'ping timeout'"
expect = "none"

[[rule]]
name = "no transport error"
table = "sio_sockets"
where = "disconnect_reason == 'transport error'"
expect = "none"

[[rule]]
name = "every socket that asked for recovery recovered"
table = "sio_sockets"
where = "recovered == False"
expect = "none"
"""


@pytest.mark.parametrize("name", ["sio4_ping_timeout.pcap", "sio4_disconnects.pcapng", "sio4_recovery.pcap",
                                  "sio2_ping_timeout.pcap"])
def test_dissect_check_gates_on_the_peers_sockets(tmp_path: Path, name: str) -> None:
    """`dissect check` fails exactly when the server recorded a ping timeout or refused a recovery,
    and names those sockets."""
    rules = tmp_path / "rules.toml"
    rules.write_text(SOCKET_RULES)
    res = CliRunner().invoke(main, ["check", str(CAPTURES / name), "--rules", str(rules)])
    sockets = truth(name.split(".")[0])["sockets"]
    timeouts = [s for s in sockets if s["server_disconnect_reason"] == "ping timeout"]
    refused = [s for s in sockets if s["recovered"] is False]
    assert res.exit_code == (1 if timeouts or refused else 0), res.output
    lines = res.output.splitlines()
    assert lines[-1] == f"3 rule(s): {3 - bool(timeouts) - bool(refused)} held, {bool(timeouts) + bool(refused)} failed"
    assert ("FAIL no ping timeout" in res.output) == bool(timeouts)
    assert "PASS no transport error" in res.output
    offenders = [ln.strip() for ln in lines if ln.startswith("    ")]
    for s in timeouts:
        assert any(f"eio_sid={s['eio_sid']}" in o and 'disconnect_reason="ping timeout"' in o
                   for o in offenders), s
    for s in refused:
        assert any(f"eio_sid={s['eio_sid']} socket_sid={s['socket_sid']}" in o for o in offenders), s
    assert len(offenders) == len(timeouts) + len(refused)
