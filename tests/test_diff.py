"""dissect diff: counts by key and duration percentiles against a baseline, within tolerances."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import dissect
from dissect.cli.diff import diff as diff_cmd
from dissect.output.summary import SummaryBuilder
from dissect.output.tables import Analysis
from dissect.records import TABLES, WsFrame
from dissect.report.check import DiffConfig, RuleResult, RulesError, parse_rules
from dissect.report.diff import diff_reports, keyed_counts
from tests.test_summary import synthetic_rows

DAY_NS = 86_400 * 10**9


def failures(results: list[RuleResult]) -> dict[str, RuleResult]:
    return {r.name: r for r in results if not r.passed}


def shifted(rows: dict[str, list[Any]], ns: int, id_offset: int) -> dict[str, list[Any]]:
    """The same traffic a day later, with other session ids: nothing diff compares changes."""
    out: dict[str, list[Any]] = {}
    for table, rs in rows.items():
        fields = TABLES[table]._fields  # type: ignore[attr-defined]
        ts = [i for i, f in enumerate(fields) if f.startswith("ts") or f.endswith("_ts")]
        new = []
        for r in rs:
            vals = list(r)
            vals[0] += id_offset
            for i in ts:
                if vals[i] is not None:
                    vals[i] += ns
            new.append(type(r)(*vals))
        out[table] = new
    return out


def write_report(rows: dict[str, list[Any]], directory: Path) -> None:
    """A baseline directory as ``dissect report --out`` writes it (the lead's CSV writer)."""
    from dissect.output.writers import ReportWriter

    w = ReportWriter(str(directory), "csv")
    b = SummaryBuilder()
    for table, rs in rows.items():
        w.add(table, rs)
        b.add(table, rs)
    w.close()
    (directory / "summary.json").write_text(json.dumps(b.result()))


def test_same_traffic_later_with_other_ids_matches() -> None:
    rows = synthetic_rows()
    base = Analysis.from_rows(rows, {})
    cur = Analysis.from_rows(shifted(rows, DAY_NS, 1000), {})
    results = diff_reports(base, cur, DiffConfig(duration_abs_tolerance_ms=0.0, duration_rel_tolerance=0.0))
    assert failures(results) == {}
    names = [r.name for r in results]
    assert "ws_frames: rows" in names
    assert "ws_frames: counts by opcode and direction" in names
    assert "handshakes.duration_ms layer=socketio" in names
    assert "sio_packets.ack_latency_ms" in names


def test_baseline_from_disk_matches_memory(tmp_path: Path) -> None:
    rows = synthetic_rows()
    write_report(rows, tmp_path)
    base = Analysis.from_dir(str(tmp_path))
    assert len(base.ws_frames) == len(rows["ws_frames"])
    cur = Analysis.from_rows(rows, {})
    assert failures(diff_reports(base, cur)) == {}
    for table in ("handshakes", "ws_frames", "sio_packets", "http", "sessions"):

        assert keyed_counts(table, base.table(table)) == keyed_counts(table, cur.table(table)), table


def test_counts_by_key_differ() -> None:
    rows = synthetic_rows()
    base = Analysis.from_rows(rows, {})
    more = dict(rows)
    extra = [
        WsFrame(
            1,
            1000 + i,
            rows["ws_frames"][0].ts,
            "s2c",
            True,
            False,
            False,
            False,
            9,
            "ping",
            False,
            0,
            2,
            False,
            None,
            None,
            "",
        )
        for i in range(3)
    ]
    more["ws_frames"] = rows["ws_frames"] + extra
    cur = Analysis.from_rows(more, {})
    bad = failures(diff_reports(base, cur))
    assert set(bad) == {"ws_frames: rows", "ws_frames: counts by opcode and direction"}
    assert bad["ws_frames: rows"].value == 3
    assert bad["ws_frames: counts by opcode and direction"].offenders == [
        "ping s2c: 0 -> 3 (+3)"
    ]
    # Tolerances: absolute and relative.
    assert failures(diff_reports(base, cur, DiffConfig(count_tolerance=3))) == {}
    # 3 more rows is within 5 % of the table, but a key new in the current capture never is.
    assert len(rows["ws_frames"]) * 0.05 >= 3
    assert set(failures(diff_reports(base, cur, DiffConfig(count_rel_tolerance=0.05)))) == {
        "ws_frames: counts by opcode and direction"
    }
    assert failures(diff_reports(base, cur, {"ignore_tables": ["ws_frames"]})) == {}


def test_sio_events_and_http_status_differ() -> None:
    rows = synthetic_rows()
    base = Analysis.from_rows(rows, {})
    other = synthetic_rows(events=("message", "typing2"))
    other["http"] = [h._replace(status=500) if h.status == 404 else h for h in other["http"]]
    bad = failures(diff_reports(base, Analysis.from_rows(other, {})))
    sio = bad["sio_packets: counts by type, event, namespace and direction"]
    assert 'EVENT "typing" on /chat c2s: 9 -> 0 (-9)' in sio.offenders
    assert 'EVENT "typing2" on /chat c2s: 0 -> 9 (+9)' in sio.offenders
    http = bad["http: counts by method and status"]
    assert set(http.offenders) == {"GET 404: 3 -> 0 (-3)", "GET 500: 0 -> 3 (+3)"}
    assert "sio_packets: rows" not in bad


def test_durations_within_tolerance() -> None:
    base = Analysis.from_rows(synthetic_rows(), {})
    slow = Analysis.from_rows(synthetic_rows(hs_scale=3.0), {})
    fast = Analysis.from_rows(synthetic_rows(hs_scale=0.2), {})
    tight = DiffConfig(duration_rel_tolerance=0.5, duration_abs_tolerance_ms=0.0)
    bad = failures(diff_reports(base, slow, tight))
    assert set(bad) >= {"handshakes.duration_ms layer=socketio", "sio_packets.ack_latency_ms"}
    sio = bad["handshakes.duration_ms layer=socketio"]
    assert sio.offenders and sio.offenders[0].startswith("p50 ")
    assert "tolerance" in sio.offenders[0]
    # Faster fails both ways by default, never with only_slower.
    assert "handshakes.duration_ms layer=websocket" in failures(diff_reports(base, fast, tight))
    only_slower = DiffConfig(duration_rel_tolerance=0.5, duration_abs_tolerance_ms=0.0, only_slower=True)
    assert not any(".duration_ms" in n or "latency" in n for n in failures(diff_reports(base, fast, only_slower)))
    # A generous tolerance accepts 3x.
    loose = DiffConfig(duration_rel_tolerance=2.5)
    assert not any("duration" in n or "latency" in n for n in failures(diff_reports(base, slow, loose)))
    # Percentiles are configurable.
    cfg = parse_rules(
        '[diff]\npercentiles = ["p99", "max"]\nduration_rel_tolerance = 0.1\nduration_abs_tolerance_ms = 0'
    ).diff
    r = failures(diff_reports(base, slow, cfg))["handshakes.duration_ms layer=tcp"]
    assert [o.split()[0] for o in r.offenders] == ["p99", "max"]


def test_layer_missing_in_current() -> None:
    rows = synthetic_rows()
    base = Analysis.from_rows(rows, {})
    cur_rows = dict(rows)
    cur_rows["handshakes"] = [h for h in rows["handshakes"] if h.layer != "socketio"]
    bad = failures(diff_reports(base, Analysis.from_rows(cur_rows, {})))
    assert bad["handshakes.duration_ms layer=socketio"].message == "no values in the current capture"
    assert "handshakes: counts by layer and transport" in bad


def test_bad_tolerances() -> None:
    with pytest.raises(RulesError):
        diff_reports(Analysis(), Analysis(), {"count_tolerance": "x"})
    with pytest.raises(RulesError, match="percentiles"):
        diff_reports(Analysis(), Analysis(), {"percentiles": ["median"]})


# -- CLI ------------------------------------------------------------------------------------------


@pytest.fixture()
def baseline_dir(tmp_path: Path) -> Path:
    d = tmp_path / "baseline"
    d.mkdir()
    write_report(synthetic_rows(), d)
    return d


def test_cli_diff(tmp_path: Path, baseline_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    current = {"a": Analysis.from_rows(synthetic_rows(), {})}
    monkeypatch.setattr(dissect, "analyze", lambda paths, **kw: current["a"])
    runner = CliRunner()
    junit = tmp_path / "junit.xml"
    r = runner.invoke(diff_cmd, [str(baseline_dir), "cap.pcapng", "--junit", str(junit)])
    assert r.exit_code == 0, r.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "dissect.diff"
    assert suite.get("failures") == "0" and int(suite.get("tests") or 0) >= 12

    current["a"] = Analysis.from_rows(synthetic_rows(hs_scale=5.0, events=("message", "x")), {})
    rules = tmp_path / "rules.toml"
    rules.write_text("[diff]\nduration_rel_tolerance = 0.5\nduration_abs_tolerance_ms = 0.5\n")
    r = runner.invoke(
        diff_cmd, [str(baseline_dir), "cap.pcapng", "--rules", str(rules), "--junit", str(junit), "--quiet"]
    )
    assert r.exit_code == 1
    assert "FAIL sio_packets: counts by type, event, namespace and direction" in r.output
    assert '    EVENT "x" on /chat c2s: 0 -> 9 (+9)' in r.output
    assert "FAIL handshakes.duration_ms layer=socketio" in r.output
    assert "PASS" not in r.output
    root = ET.parse(junit).getroot()
    assert int(root.get("failures") or 0) >= 3

    # Loose tolerances from the rules file make the same capture pass on durations.
    rules.write_text("[diff]\nduration_rel_tolerance = 10\nignore_tables = ['sio_packets']\n")
    r = runner.invoke(diff_cmd, [str(baseline_dir), "cap.pcapng", "--rules", str(rules)])
    assert r.exit_code == 0, r.output


def test_cli_diff_unusable(tmp_path: Path, baseline_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    junit = tmp_path / "junit.xml"
    # A baseline that is neither a report nor a capture: exit 2, one line, and a JUnit error case.
    r = runner.invoke(diff_cmd, [str(tmp_path / "nosuch"), str(baseline_dir), "--junit", str(junit)])
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert r.output.startswith("dissect diff: baseline: ") and "nosuch" in r.output
    error = ET.parse(junit).getroot().find("testsuite/testcase/error")
    assert error is not None and error.get("message") == r.output.strip()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(diff_cmd, [str(empty), str(baseline_dir)])
    assert r.exit_code == 2 and "baseline: " in r.output and "no capture files" in r.output
    r = runner.invoke(diff_cmd, [str(baseline_dir), str(baseline_dir), "cap.pcapng"])
    assert r.exit_code == 2 and "current: give one report directory or captures, not both" in r.output

    monkeypatch.setattr(dissect, "analyze", lambda paths, **kw: Analysis())
    bad = tmp_path / "bad.toml"
    bad.write_text("[diff]\nnope = 1\n")
    r = runner.invoke(diff_cmd, [str(baseline_dir), "cap.pcapng", "--rules", str(bad)])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "unknown key 'nope'" in r.output

    from dissect.errors import CaptureError

    def unreadable(paths: list[str], **kw: object) -> Analysis:
        raise CaptureError("cap.pcapng: truncated header")

    monkeypatch.setattr(dissect, "analyze", unreadable)
    r = runner.invoke(diff_cmd, [str(baseline_dir), "cap.pcapng", "--junit", str(junit)])
    assert r.exit_code == 2 and r.output == "dissect diff: current: cap.pcapng: truncated header\n"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("1", "1", "0")


@pytest.mark.parametrize(
    ("table", "values", "label"),
    [
        ("sessions", {"transport": "tcp", "app_protocol": "socketio"}, "socketio over tcp"),
        ("sessions", {"transport": "udp", "app_protocol": "udp"}, "udp"),
        ("handshakes", {"layer": "engineio", "transport": "polling"}, "engineio (polling)"),
        ("handshakes", {"layer": "tcp", "transport": None}, "tcp"),
        ("handshakes", {"layer": "websocket", "transport": "websocket"}, "websocket"),
        ("http", {"method": "GET", "status": float("nan")}, "GET no response"),
        ("http", {"method": "GET", "status": 101.0}, "GET 101"),
        ("ws_frames", {"opcode_name": "text", "direction": "c2s"}, "text c2s"),
        ("sio_packets", {"sio_type": "EVENT", "event": "chat", "namespace": "/chat", "eio_type": "message",
                         "attachment_index": None, "direction": "c2s"}, 'EVENT "chat" on /chat c2s'),
        ("sio_packets", {"sio_type": "", "event": None, "namespace": None, "eio_type": "open",
                         "attachment_index": None, "direction": "s2c"}, "Engine.IO open s2c"),
        ("sio_packets", {"sio_type": "", "event": None, "namespace": "/", "eio_type": "message",
                         "attachment_index": 0, "direction": "c2s"}, "attachment on / c2s"),
        ("sio_packets", {"sio_type": "CONNECT", "event": "", "namespace": "/", "eio_type": "message",
                         "attachment_index": None, "direction": "s2c"}, "CONNECT on / s2c"),
    ],
)
def test_key_labels(table: str, values: dict[str, Any], label: str) -> None:
    from dissect.report.diff import key_label

    assert key_label(table, values) == label


def test_failed_handshakes_only_count_when_they_grow() -> None:
    rows = synthetic_rows()
    base = Analysis.from_rows(rows, {})
    worse = dict(rows)
    worse["handshakes"] = [h._replace(ok=False, detail="namespace=/chat error=nope") if h.layer == "socketio"
                           else h for h in rows["handshakes"]]
    n = sum(1 for h in rows["handshakes"] if h.layer == "socketio")
    bad = failures(diff_reports(base, Analysis.from_rows(worse, {})))
    assert bad["handshakes failed by layer"].offenders == [
        f"socketio: 0 -> {n} (+{n}): namespace=/chat error=nope"]
    assert "handshakes failed by layer" not in failures(diff_reports(Analysis.from_rows(worse, {}), base))
    # A handshake the capture's end cut short (ok empty) is no failure.
    cut = dict(rows)
    cut["handshakes"] = [h._replace(ok=None) if h.layer == "socketio" else h for h in rows["handshakes"]]
    assert "handshakes failed by layer" not in failures(diff_reports(base, Analysis.from_rows(cut, {})))


def test_new_tolerance_keys_from_a_rules_file() -> None:
    cfg = parse_rules("[diff]\nanomaly_tolerance = 2\nanomaly_rel_tolerance = 0.1\nlost_bytes_tolerance = 65536\n"
                      "lost_bytes_rel_tolerance = 0.5\nretransmission_tolerance = 3\n"
                      "retransmission_rel_tolerance = 0.2\n").diff
    assert (cfg.anomaly_tolerance, cfg.lost_bytes_tolerance, cfg.retransmission_tolerance) == (2, 65536, 3)
    assert cfg.percentiles == ("p50", "p90", "p99")
    with pytest.raises(RulesError, match="whole number"):
        parse_rules("[diff]\nlost_bytes_tolerance = 1.5\n")
