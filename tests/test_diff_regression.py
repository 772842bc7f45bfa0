"""dissect diff on real captures: a regression made from a corpus capture (three TCP segments
dropped, one sent twice, the server slower) is named for what it is made of: anomalies, lost bytes,
retransmissions and latency; either side may be a report directory or captures; facts such as
failed handshakes, close codes and TLS decryption are compared against the peers' truth."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import dpkt
import pytest
from click.testing import CliRunner

import dissect
from dissect.cli import main
from dissect.report.check import RuleResult
from dissect.report.diff import diff_reports

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
SIO4 = CAPTURES / "sio4_websocket.pcap"
SERVER_PORT = json.loads((CAPTURES / "sio4_websocket.truth.json").read_text())["server_port"]
DELAY_S = 0.020


def segments(path: Path) -> list[tuple[float, bytes, dpkt.tcp.TCP]]:
    with open(path, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        assert reader.datalink() == dpkt.pcap.DLT_EN10MB
        return [(ts, buf, dpkt.ethernet.Ethernet(buf).data.data) for ts, buf in reader]


def make_regression(src: Path, dst: Path) -> dict[str, int]:
    """``src`` with the three largest data segments dropped, one later data segment sent twice
    (a retransmission) and each server data segment 20 ms later than the one before it would have
    been (a slower server); returns what was done."""
    pkts = segments(src)
    data = [i for i, (_, _, tcp) in enumerate(pkts) if tcp.data]
    dropped = sorted(sorted(data, key=lambda i: -len(pkts[i][2].data))[:3])
    duplicated = next(i for i in data if i > dropped[-1] and i not in dropped)
    off = 0.0
    with open(dst, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_EN10MB, nano=True)
        for i, (ts, buf, tcp) in enumerate(pkts):
            if tcp.sport == SERVER_PORT and tcp.data:
                off += DELAY_S
            if i in dropped:
                continue
            w.writepkt(buf, ts + off)
            if i == duplicated:
                w.writepkt(buf, ts + off + 1e-4)
    return {"lost_bytes": sum(len(pkts[i][2].data) for i in dropped), "retransmissions": 1}


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    dst = tmp_path_factory.mktemp("regression") / "sio4_regressed.pcap"
    return dst, make_regression(SIO4, dst)


def by_name(results: list[RuleResult]) -> dict[str, RuleResult]:
    return {r.name: r for r in results}


def test_regression_is_named_for_what_it_is_made_of(regression: tuple[Path, dict[str, int]]) -> None:
    path, made = regression
    base, cur = dissect.analyze(str(SIO4), quiet=True), dissect.analyze(str(path), quiet=True)
    assert int(base.sessions.lost_bytes.sum()) == 0 and int(base.sessions.retransmissions.sum()) == 0
    res = by_name(diff_reports(base, cur))

    anomalies = res["anomalies by kind"]
    assert not anomalies.passed
    n_anomalies = cur.summary["anomalies"]["total"]  # counted by the pipeline's summary
    assert n_anomalies > 0 and base.summary["anomalies"]["total"] == 0
    assert anomalies.message.startswith(f"{n_anomalies} anomalies, baseline 0 (+{n_anomalies})")
    assert any(o.startswith("resync in ws_frames: 0 -> ") for o in anomalies.offenders)

    lost = res["tcp: lost bytes"]
    assert not lost.passed
    assert lost.message == f"{made['lost_bytes']} bytes lost, baseline 0 (+{made['lost_bytes']}, tolerance 0)"
    assert lost.offenders == [f"session_id=1 lost_bytes={made['lost_bytes']}"]
    retrans = res["tcp: retransmissions"]
    assert not retrans.passed and retrans.value == made["retransmissions"]

    # The server answers 20 ms later: acks and handshakes answered by it are slower.
    ack = res["sio_packets.ack_latency_ms"]
    assert not ack.passed and ack.offenders[0].startswith("p50 ")
    for layer in ("websocket", "socketio"):
        assert not res[f"handshakes.duration_ms layer={layer}"].passed
    assert res["handshakes.duration_ms layer=tcp"].passed  # the SYN/ACK is no data segment

    # Keys are readable: no "namespace=- sio_type=- event=-".
    keys = res["sio_packets: counts by type, event, namespace and direction"].offenders
    assert keys and not any("=-" in k or "sio_type=" in k for k in keys)
    assert all(k.split(":")[0].endswith((" c2s", " s2c")) for k in keys)

    # Swapped: fewer anomalies, lost bytes and retransmissions are never a regression.
    back = by_name(diff_reports(cur, base))
    for name in ("anomalies by kind", "tcp: lost bytes", "tcp: retransmissions"):
        assert back[name].passed, back[name].message
    assert not back["sio_packets.ack_latency_ms"].passed  # faster fails, unless only_slower
    assert back["sio_packets.ack_latency_ms"].name not in {
        r.name for r in diff_reports(cur, base, {"only_slower": True}) if not r.passed}


def test_tolerances_of_the_facts(regression: tuple[Path, dict[str, int]]) -> None:
    path, made = regression
    base, cur = dissect.analyze(str(SIO4), quiet=True), dissect.analyze(str(path), quiet=True)
    loose = {"lost_bytes_tolerance": made["lost_bytes"], "retransmission_tolerance": 1,
             "anomaly_tolerance": 4, "count_tolerance": 7, "duration_abs_tolerance_ms": 41}
    assert [r.name for r in diff_reports(base, cur, loose) if not r.passed] == []
    one_short = by_name(diff_reports(base, cur, {**loose, "lost_bytes_tolerance": made["lost_bytes"] - 1}))
    assert [n for n, r in one_short.items() if not r.passed] == ["tcp: lost bytes"]
    # A relative tolerance allows nothing on a baseline of 0.
    rel = by_name(diff_reports(base, cur, {**loose, "lost_bytes_tolerance": 0, "lost_bytes_rel_tolerance": 10.0}))
    assert not rel["tcp: lost bytes"].passed


def test_cli_diff_report_or_captures_on_either_side(tmp_path: Path, regression: tuple[Path, dict[str, int]]) -> None:
    path, made = regression
    runner = CliRunner()
    good_dir, bad_dir = tmp_path / "good", tmp_path / "bad"
    for cap, out in ((SIO4, good_dir), (path, bad_dir)):
        r = runner.invoke(main, ["report", str(cap), "--out", str(out), "--no-html", "--quiet"])
        assert r.exit_code == 0, r.output

    # No change: exit 0, whichever form each side takes.
    for sides in ([SIO4, SIO4], [good_dir, SIO4], [SIO4, good_dir], [good_dir, good_dir]):
        r = runner.invoke(main, ["diff", *map(str, sides), "--quiet"])
        assert (r.exit_code, r.output) == (0, ""), sides

    junit = tmp_path / "junit.xml"
    for sides in ([SIO4, path], [good_dir, bad_dir], [good_dir, path]):
        r = runner.invoke(main, ["diff", *map(str, sides), "--quiet", "--junit", str(junit)])
        assert r.exit_code == 1, (sides, r.output)
        assert "FAIL anomalies by kind: " in r.output
        assert f"FAIL tcp: lost bytes: {made['lost_bytes']} bytes lost, baseline 0" in r.output
        assert "FAIL tcp: retransmissions: 1 retransmitted segment(s), baseline 0" in r.output
        assert "FAIL sio_packets.ack_latency_ms: " in r.output
        assert r.output.splitlines()[-1].endswith("failed") and " comparison(s): " in r.output
        suite = ET.parse(junit).getroot().find("testsuite")
        assert suite is not None
        failed = {c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None}
        assert {"anomalies by kind", "tcp: lost bytes", "tcp: retransmissions",
                "sio_packets.ack_latency_ms"} <= failed


def test_failed_handshakes_and_close_codes_against_the_truth() -> None:
    ok = dissect.analyze(str(SIO4), quiet=True)
    refused = dissect.analyze(str(CAPTURES / "sio4_connect_error.pcap"), quiet=True)
    truth = json.loads((CAPTURES / "sio4_connect_error.truth.json").read_text())
    errors = [n for n in truth["namespaces"] if not n["ok"]]
    res = by_name(diff_reports(ok, refused))["handshakes failed by layer"]
    assert not res.passed
    (line,) = res.offenders
    assert line.startswith(f"socketio: 0 -> {len(errors)} (+{len(errors)}): ")
    for n in errors:
        assert f"namespace={n['namespace']} error={n['error']}" in line

    def truth_codes(name: str) -> Counter[str]:
        t = json.loads((CAPTURES / f"{name}.truth.json").read_text())
        return Counter(f"{c['close_code']} {c['direction']}" for conn in t["connections"]
                       for c in conn.get("control", []) if c["opcode"] == "close")

    basic, policy = truth_codes("ws_basic"), truth_codes("ws_close_4001")
    assert basic and policy and not set(basic) & set(policy)
    res = by_name(diff_reports(dissect.analyze(str(CAPTURES / "ws_basic.pcap"), quiet=True),
                               dissect.analyze(str(CAPTURES / "ws_close_4001.pcap"), quiet=True)))
    codes = res["websocket close codes"]
    assert not codes.passed
    assert set(codes.offenders) == {f"{k}: {basic[k]} -> 0 (-{basic[k]})" for k in basic} | {
        f"{k}: 0 -> {policy[k]} (+{policy[k]})" for k in policy}


def test_tls_sessions_decrypted(tmp_path: Path) -> None:
    cap, keys = CAPTURES / "tls12_ws_aesgcm.pcap", CAPTURES / "tls12_ws_aesgcm.keys"
    runner = CliRunner()
    out = tmp_path / "with_keys"
    r = runner.invoke(main, ["report", str(cap), "--out", str(out), "--no-html", "--quiet",
                             "--tls-keylog", str(keys)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["diff", str(out), str(cap), "--tls-keylog", str(keys), "--quiet"])
    assert (r.exit_code, r.output) == (0, "")
    r = runner.invoke(main, ["diff", str(out), str(cap), "--quiet"])  # the keys were forgotten
    assert r.exit_code == 1
    n = int(dissect.analyze(str(cap), quiet=True, tls_keylog=str(keys)).sessions.tls_decrypted.sum())
    assert n >= 1
    assert f"    decrypted: {n} -> 0 (-{n})" in r.output
    assert f"    not decrypted: 0 -> {n} (+{n})" in r.output
