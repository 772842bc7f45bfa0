"""What a user of ``dissect crosscheck`` reads and runs: readable UTC times, sessions named by
Wireshark's ``tcp.stream``, ``--port/--host``, ``--quiet``, ``--junit``, and a capture cut short
compared as far as tshark reads it."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import dissect
from dissect.cli.crosscheck import crosscheck as crosscheck_cmd
from dissect.output.tables import Analysis
from dissect.report import crosscheck as cc

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def _tshark(*args: str) -> list[list[str]]:
    out = subprocess.run(["tshark", "-n", *args], capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def _drop_first_s2c_frame(monkeypatch: pytest.MonkeyPatch, session_id: int) -> None:
    real = dissect.analyze

    def fake(path: Any, **kw: Any) -> Analysis:
        a = real(path, **kw)
        f = a.ws_frames
        drop = f.index[(f.session_id == session_id) & (f.direction == "s2c")][0]
        a.ws_frames = f.drop(index=drop)
        return a

    monkeypatch.setattr(cc, "analyze", fake)


@needs_tshark
@pytest.mark.parametrize("name", ["ws_basic.pcap", "sio4_polling_upgrade.pcapng"])
def test_times_are_utc_iso_with_the_epoch_as_wireshark_shows_them(name: str) -> None:
    """The time of a capture's packets, as dissect's messages write them, against tshark's own UTC
    date-time column (``-t ud``) and frame.time_epoch, at the capture's precision."""
    path = str(CAPTURES / name)
    r = cc.compare_analysis(dissect.analyze(path), cc.WiresharkView(), path)
    rows = _tshark("-r", path, "-c", "5", "-t", "ud", "-T", "fields", "-e", "frame.time_epoch", "-e", "_ws.col.Time")
    assert rows
    for epoch, utc in rows:
        ns = cc.wireshark.parse_epoch_ns(epoch)
        day, clock = utc.split(" ")
        digits = len(clock.split(".")[1])
        assert digits == r.digits
        assert r.t(ns) == f"{day}T{clock}Z [{epoch[:len(epoch) - (9 - digits)]}]"


def test_time_text_units() -> None:
    r = cc.CrossCheckResult("x.pcap", "tshark", digits=6)
    assert r.t(None) == "-"
    assert r.epoch(1_700_000_000_123_456_789) == "1700000000.123457"
    assert r.t(1_700_000_000_123_456_789).endswith("Z [1700000000.123457]")


@needs_tshark
def test_a_disagreement_names_the_session_by_tcp_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream a disagreement names is the one Wireshark shows for that session: tshark's
    ``tcp.stream == N`` selects exactly the session's two endpoints."""
    path = str(CAPTURES / "ws_multi.pcapng")
    a = dissect.analyze(path)
    sid = int(a.ws_frames.session_id.iloc[-1])  # not the first session: stream and session differ
    row = a.sessions[a.sessions.session_id == sid].iloc[0]
    _drop_first_s2c_frame(monkeypatch, sid)
    result = cc.compare(path)
    assert [d.check for d in result.disagreements] == ["ws_frames"], result.render()
    d = result.disagreements[0]
    assert d.session_id == sid and d.tcp_stream is not None
    assert f"session {sid} (tcp.stream == {d.tcp_stream}): " in result.render()
    shown = _tshark("-r", path, "-Y", f"tcp.stream == {d.tcp_stream}", "-T", "fields",
                    "-e", "tcp.srcport", "-e", "tcp.dstport")
    assert shown and {frozenset(map(int, p)) for p in shown} == {frozenset({int(row.client_port),
                                                                            int(row.server_port)})}
    assert json.loads(json.dumps(result.to_dict()))["disagreements"][0]["tcp_stream"] == d.tcp_stream


@needs_tshark
def test_port_and_host_select_the_same_flows_on_both_sides() -> None:
    path = str(CAPTURES / "sio4_polling_upgrade.pcapng")
    sessions = dissect.analyze(path).sessions
    port = int(sessions.client_port.iloc[1])
    runner = CliRunner()
    res = runner.invoke(crosscheck_cmd, [path, "--port", str(port), "--host", "127.0.0.1", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)[0]
    assert data["disagreements"] == [] and data["compared"]["streams"] == 1
    every = runner.invoke(crosscheck_cmd, [path, "--json"])
    assert json.loads(every.output)[0]["compared"]["streams"] == len(sessions) > 1
    none = runner.invoke(crosscheck_cmd, [path, "--host", "192.0.2.1", "--json"])
    assert none.exit_code == 0 and json.loads(none.output)[0]["compared"]["streams"] == 0
    bad = runner.invoke(crosscheck_cmd, [path, "--host", "nope"])
    assert bad.exit_code == 2 and "not an IP address" in bad.output


def test_display_filter_of_the_flow_options() -> None:
    assert cc.display_filter() is None
    assert cc.display_filter([80, 443], ["[::1]", "10.0.0.1"]) == (
        "(tcp.port == 80 || tcp.port == 443) && (ip.addr == 10.0.0.1 || ipv6.addr == ::1)")


@needs_tshark
def test_quiet_prints_only_disagreements(monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(CAPTURES / "ws_basic.pcap")
    runner = CliRunner()
    agree = runner.invoke(crosscheck_cmd, [path, "--quiet"])
    assert agree.exit_code == 0 and agree.output == ""
    _drop_first_s2c_frame(monkeypatch, 1)
    differ = runner.invoke(crosscheck_cmd, [path, "-q"])
    assert differ.exit_code == 1
    lines = differ.output.splitlines()
    assert lines[0].endswith("1 disagreement(s)") and "not in dissect" in lines[-1]
    assert "compared:" not in differ.output and len(lines) == 3


@needs_tshark
def test_junit_has_one_case_per_check_per_capture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    paths = [str(CAPTURES / "ws_basic.pcap"), str(CAPTURES / "http_keepalive.pcap")]
    _drop_first_s2c_frame(monkeypatch, 1)
    dropping = cc.analyze

    def only_ws_basic(path: Any, **kw: Any) -> Analysis:  # http_keepalive has no frame to drop
        return dropping(path, **kw) if path.endswith("ws_basic.pcap") else dissect.analyze(path, **kw)

    monkeypatch.setattr(cc, "analyze", only_ws_basic)
    out = tmp_path / "junit.xml"
    res = CliRunner().invoke(crosscheck_cmd, [*paths, "--junit", str(out), "--quiet"])
    assert res.exit_code == 1, res.output
    root = ET.parse(out).getroot()
    cases = root.findall(".//testcase")
    names = [c.get("name") for c in cases]
    assert names == [f"{p}: {check}" for p in paths for check in cc.CHECKS]
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == [f"{paths[0]}: ws_frames"]
    failure = cases[names.index(failed[0])].find("failure")
    assert failure is not None and "tcp.stream == 0" in (failure.text or "")
    assert root.get("tests") == str(2 * len(cc.CHECKS)) and root.get("failures") == "1"


@needs_tshark
@pytest.mark.parametrize("name", ["ws_deflate_ctx.pcap", "ws_basic.pcap"])
def test_a_capture_cut_short_is_compared_as_far_as_tshark_reads(tmp_path: Path, name: str) -> None:
    data = (CAPTURES / name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: int(len(data) * 0.6)])
    assert subprocess.run(["tshark", "-r", str(cut)], capture_output=True).returncode != 0  # tshark: cut short
    res = CliRunner().invoke(crosscheck_cmd, [str(cut)])
    assert res.exit_code == 0, res.output
    assert "tshark: the capture appears to have been cut short" in res.output
    assert "dissect: truncated-file" in res.output
    whole = CliRunner().invoke(crosscheck_cmd, [str(CAPTURES / name), "--json"])
    part = CliRunner().invoke(crosscheck_cmd, [str(cut), "--json"])
    frames = json.loads(part.output)[0]["compared"]["ws_frames"]
    assert 0 < frames < json.loads(whole.output)[0]["compared"]["ws_frames"]
    assert json.loads(part.output)[0]["notes"]


def test_the_command_line_starts_without_pandas() -> None:
    """Only the commands that need DataFrames import pandas (it costs ~70 MB and ~0.3 s)."""
    import subprocess
    import sys

    from dissect.cli.crosscheck import ENGINE_NAMES
    from dissect.report.crosscheck import ENGINES

    assert sorted(ENGINES) == ENGINE_NAMES
    out = subprocess.run([sys.executable, "-c", "import sys, dissect.cli; print('pandas' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
