"""dissect check: the rules format, where validation, results, JUnit XML, the CLI and assert_rules."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import dissect
from dissect.cli.check import check as check_cmd
from dissect.output.tables import Analysis
from dissect.report.check import (
    RuleResult,
    RulesError,
    assert_rules,
    check_rules,
    compile_where,
    eval_where,
    junit_xml,
    load_rules,
    parse_rules,
)
from tests.test_summary import synthetic_analysis

# Synthetic data (tests/test_summary.py): sessions 1..9; id % 3 == 0 HTTP, 1 WebSocket,
# 2 Socket.IO on /chat; WebSocket close code 1006 (with anomalies) on sessions 4 and 8, else 1000;
# session 5 closed by RST.

EXAMPLE = """
[[rule]]
name = "socketio handshake p90 under 50 ms"
metric = "handshakes.duration_ms"
where = "layer == 'socketio'"
stat = "p90"
max = 50

[[rule]]
name = "no websocket anomalies"
table = "ws_frames"
where = "anomaly != ''"
expect = "none"

[[rule]]
name = "chat events seen"
table = "sio_packets"
where = "sio_type == 'EVENT' and namespace == '/chat' and event == 'message'"
stat = "count"
min = 3

[[rule]]
name = "close codes"
table = "ws_frames"
column = "close_code"
allowed = [1000, 1001]

[[rule]]
name = "no RST"
table = "sessions"
where = "close == 'rst'"
expect = "none"

[[rule]]
name = "few anomalies overall"
metric = "summary.anomalies.total"
max = 100
"""


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    return synthetic_analysis()


def by_name(results: list[RuleResult]) -> dict[str, RuleResult]:
    return {r.name: r for r in results}


def test_example_rules(analysis: Analysis) -> None:
    rules = parse_rules(EXAMPLE)
    assert [r.kind for r in rules.rules] == ["stat", "expect", "stat", "allowed", "expect", "summary"]
    res = by_name(check_rules(analysis, rules))
    assert res["socketio handshake p90 under 50 ms"].passed
    assert res["chat events seen"].passed
    assert res["chat events seen"].value == 9
    assert res["few anomalies overall"].passed
    assert res["few anomalies overall"].value == 9

    anomalies = res["no websocket anomalies"]
    assert not anomalies.passed and anomalies.total_offenders == 2
    assert anomalies.offenders[0].startswith("session_id=4 frame_index=")
    assert "2 ws_frames row(s), expected none" in anomalies.message

    codes = res["close codes"]
    assert not codes.passed
    assert "1006 (2)" in codes.message
    assert [o.split()[0] for o in codes.offenders] == ["session_id=4", "session_id=8"]
    assert all("close_code=1006" in o for o in codes.offenders)

    rst = res["no RST"]
    assert not rst.passed and rst.offenders == ["session_id=5 app_protocol=socketio"]


def test_stat_rules_and_offenders(analysis: Analysis) -> None:
    rules = parse_rules("""
[[rule]]
name = "slow ws"
metric = "handshakes.duration_ms"
where = "layer == 'websocket'"
stat = "max"
max = 0.5

[[rule]]
name = "tcp p50 at least"
metric = "handshakes.duration_ms"
where = "layer == 'tcp'"
stat = "p50"
min = 10

[[rule]]
name = "exact session count"
table = "sessions"
stat = "count"
equals = 9

[[rule]]
name = "distinct events"
table = "sio_packets"
column = "event"
stat = "nunique"
max = 1

[[rule]]
name = "no data"
metric = "handshakes.duration_ms"
where = "layer == 'quic'"
stat = "p99"
max = 1

[[rule]]
name = "no data is fine"
metric = "handshakes.duration_ms"
where = "layer == 'quic'"
stat = "p99"
max = 1
if_empty = "pass"
""")
    res = by_name(check_rules(analysis, rules))
    slow = res["slow ws"]
    ws = analysis.handshakes[analysis.handshakes.layer == "websocket"].duration_ms
    assert not slow.passed and slow.value == pytest.approx(ws.max())
    assert slow.total_offenders == int((ws > 0.5).sum()) == 6
    # Offenders sorted slowest first.
    first_sid = int(analysis.handshakes.loc[ws.idxmax(), "session_id"])
    assert slow.offenders[0].startswith(f"session_id={first_sid} layer=websocket duration_ms=")
    tcp = res["tcp p50 at least"]
    assert not tcp.passed and tcp.total_offenders == 9  # every tcp handshake is under 10 ms
    assert res["exact session count"].passed
    distinct = res["distinct events"]
    assert not distinct.passed and distinct.value == 2
    assert not res["no data"].passed and "no values" in res["no data"].message
    assert res["no data is fine"].passed


@pytest.mark.parametrize(
    ("where", "expected_sessions"),
    [
        ("close == 'rst'", {5}),
        ("close != 'fin'", {5}),
        ("session_id in [1, 2, 3] and not (app_protocol == 'http')", {1, 2}),
        ("session_id not in (1, 2)", {3, 4, 5, 6, 7, 8, 9}),
        ("'zero' in anomaly", {7}),
        # a clean row's anomaly is missing (an empty cell), and only == None matches a missing value
        ("'zero' not in anomaly", set()),
        ("anomaly == None", {1, 2, 3, 4, 5, 6, 8, 9}),
        ("3 < session_id <= 5", {4, 5}),
        ("bytes_c2s > bytes_s2c", None),  # column vs column: checked against pandas below
        ("(session_id == 1) | (session_id == 9)", {1, 9}),
        ("~(session_id > 1)", {1}),
        ("client_inferred", set()),
        ("not client_inferred", set(range(1, 10))),
        ("session_id == -1 or close == None", set()),
    ],
)
def test_where_semantics(analysis: Analysis, where: str, expected_sessions: set[int] | None) -> None:
    s = analysis.sessions
    got = set(s[eval_where(compile_where("sessions", where), s)].session_id)
    if expected_sessions is None:
        expected_sessions = set(s[s.bytes_c2s > s.bytes_s2c].session_id)
        assert expected_sessions and expected_sessions != set(s.session_id)
    assert got == expected_sessions


def test_where_missing_values(analysis: Analysis) -> None:
    f = analysis.ws_frames
    n_close = int(f.close_code.notna().sum())
    assert n_close == 6

    def count(where: str) -> int:
        return int(eval_where(compile_where("ws_frames", where), f).sum())

    assert count("close_code == None") == len(f) - n_close
    assert count("close_code != None") == n_close
    # A missing value never matches a comparison, != included.
    assert count("close_code != 1000") == 2
    assert count("not (close_code == 1000)") == len(f) - 4
    assert count("close_code in [1000, None]") == len(f) - 2


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("layer.real == 1", "attribute access"),
        ("layer.str.len() > 0", "function calls"),
        ("__import__('os').system('true')", "function calls"),
        ("detail[0] == 'x'", "subscripts"),
        ("duration_ms * 2 > 5", "arithmetic"),
        ("@x == 1", "not a valid expression"),
        ("nosuch == 1", "no column 'nosuch'"),
        ("layer == 5", "holds text values, compared with a number"),
        ("duration_ms == 'x'", "holds number values, compared with a text"),
        ("layer", "not a true/false column"),
        ("layer < None", "None compares only with == and !="),
        ("layer in [1, 'a']", "one type"),
        ("[1] in layer", "'in' takes a column and a list"),
        ("layer == [1]", "list goes only on the right"),
        ("lambda: 1", "Lambda is not allowed"),
        ("(x := 1)", "NamedExpr is not allowed"),
        ("layer == 'a' if ok else ok", "IfExp is not allowed"),
        ("", "non-empty"),
    ],
)
def test_where_rejected(where: str, why: str) -> None:
    with pytest.raises(RulesError, match=why.replace("(", r"\(")):
        compile_where("handshakes", where)


def test_where_rejected_through_rules_file(tmp_path: Path) -> None:
    p = tmp_path / "rules.toml"
    p.write_text(
        '[[rule]]\nname = "x"\ntable = "sessions"\nwhere = "__import__(\'os\').getcwd() == 1"\nexpect = "none"\n'
    )
    with pytest.raises(RulesError, match=r"rules.toml: rule 'x': where .*function calls"):
        load_rules(p)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[[rule]\nname=1", "bad TOML"),
        ('[[rule]]\nname = "a"\ntable = "nosuch"\nexpect = "none"', "unknown table 'nosuch'"),
        ('[[rule]]\nname = "a"\nmetric = "ws_frames.nosuch"\nstat = "max"\nmax = 1', "no column 'nosuch' in ws_frames"),
        ('[[rule]]\nname = "a"\ntable = "sessions"\nexpect = "none"\nmaxx = 3', "unknown key"),
        ('[[rule]]\nname = "a"\ntable = "sessions"', "exactly one test"),
        ('[[rule]]\nname = "a"\ntable = "sessions"\nexpect = "none"\nmax = 3', "exactly one test"),
        ('[[rule]]\nname = "a"\ntable = "sessions"\nexpect = "never"', "expect must be"),
        ('[[rule]]\nname = "a"\nmetric = "sessions.client_ip"\nstat = "p90"\nmax = 3', "client_ip is text"),
        ('[[rule]]\nname = "a"\nmetric = "sessions.lost_bytes"\nstat = "p101"\nmax = 3', "stat must be"),
        ('[[rule]]\nname = "a"\ntable = "sessions"\nstat = "max"\nmax = 3', "needs a column"),
        (
            '[[rule]]\nname = "a"\ntable = "ws_frames"\ncolumn = "close_code"\nallowed = ["x"]',
            "close_code holds number values",
        ),
        ('[[rule]]\nname = "a"\ntable = "sessions"\nallowed = [1]', "allowed needs a column"),
        ('[[rule]]\nname = "a"\nmetric = "summary.totals.sessions"\nwhere = "x"\nmax = 1', "where does not apply"),
        ('[[rule]]\nname = "a"\nmetric = "sessions.lost_bytes"\nstat = "max"\nmax = "3"', "max must be a number"),
        (
            '[[rule]]\nname = "a"\ntable = "sessions"\nexpect = "none"\n'
            '[[rule]]\nname = "a"\ntable = "http"\nexpect = "none"',
            "two rules are named",
        ),
        ('[rule]\nname = "a"', r"write \[\[rule\]\]"),
        ('[[rules]]\nname = "a"', "unknown top-level key"),
        ('[[rule]]\ntable = "sessions"\nexpect = "none"', "needs a name"),
        ("[diff]\ncount_tolerance = -1", "must be a number >= 0"),
        ('[diff]\nignore_tables = ["nosuch"]', "unknown table"),
        ("[diff]\nfoo = 1", "unknown key 'foo'"),
    ],
)
def test_bad_rules(text: str, why: str) -> None:
    with pytest.raises(RulesError, match=why):
        parse_rules(text)


def test_summary_metric_paths(analysis: Analysis) -> None:
    rules = parse_rules("""
[[rule]]
name = "ws frames by opcode"
metric = "summary.ws_frames.by_opcode.text"
min = 1
[[rule]]
name = "absent kind counts as zero"
metric = "summary.anomalies.by_kind.never_seen"
max = 0
[[rule]]
name = "socketio handshake p90 from summary"
metric = "summary.handshakes.socketio.duration_ms.p90"
max = 0.001
""")
    res = check_rules(analysis, rules)
    assert [r.passed for r in res] == [True, True, False]
    assert res[2].message.startswith("summary.handshakes.socketio.duration_ms.p90 is ")
    with pytest.raises(RulesError, match="summary has no nosuch"):
        check_rules(analysis, parse_rules('[[rule]]\nname = "x"\nmetric = "summary.nosuch.total"\nmax = 1'))
    with pytest.raises(RulesError, match="not a number"):
        check_rules(analysis, parse_rules('[[rule]]\nname = "x"\nmetric = "summary.totals"\nmax = 1'))


def test_assert_rules(analysis: Analysis, tmp_path: Path) -> None:
    p = tmp_path / "rules.toml"
    p.write_text(EXAMPLE)
    with pytest.raises(AssertionError) as e:
        assert_rules(analysis, p)
    text = str(e.value)
    assert text.splitlines()[0] == "3 of 6 dissect rule(s) failed:"
    assert "  FAIL close codes: 2 ws_frames row(s) with close_code outside [1000, 1001]" in text
    assert "      session_id=5 app_protocol=socketio" in text
    assert "socketio handshake" not in text  # only failures are listed
    ok = assert_rules(analysis, {"rule": [{"name": "sessions", "table": "sessions", "stat": "count", "min": 9}]})
    assert ok[0].passed


def test_junit_xml(analysis: Analysis, tmp_path: Path) -> None:
    results = check_rules(analysis, parse_rules(EXAMPLE))
    results[0].name = 'weird \x1b[31m <name> & "quotes"'
    xml = junit_xml(results)
    root = ET.fromstring(xml)
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "6" and suite.get("failures") == "3"
    cases = suite.findall("testcase")
    assert len(cases) == 6
    assert {c.get("classname") for c in cases} == {"dissect.check"}
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["no websocket anomalies", "close codes", "no RST"]
    fail = failed[1].find("failure")
    assert fail is not None and "1006 (2)" in (fail.get("message") or "")
    assert "session_id=4 frame_index=" in (fail.text or "")
    assert cases[0].get("name") == 'weird \\x1b[31m <name> & "quotes"'
    if importlib.util.find_spec("junitparser") is None:
        pytest.skip("junitparser is not installed")
    from junitparser import JUnitXml

    path = tmp_path / "junit.xml"
    path.write_text(xml, encoding="utf-8")
    parsed = JUnitXml.fromfile(str(path))
    total = sum(s.tests for s in parsed)
    failures = sum(s.failures for s in parsed)
    assert (total, failures) == (6, 3)


# -- CLI ------------------------------------------------------------------------------------------


@pytest.fixture()
def fake_analyze(monkeypatch: pytest.MonkeyPatch, analysis: Analysis) -> list[list[str]]:
    calls: list[list[str]] = []

    def fake(paths: list[str], **kw: object) -> Analysis:
        calls.append(list(paths))
        return analysis

    monkeypatch.setattr(dissect, "analyze", fake)
    return calls


GOOD = """
[[rule]]
name = "chat events seen"
table = "sio_packets"
where = "sio_type == 'EVENT' and namespace == '/chat'"
min = 3
[[rule]]
name = "handshakes ok"
table = "handshakes"
where = "not ok"
expect = "none"
"""


def test_cli_check_passes(tmp_path: Path, fake_analyze: list[list[str]]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(GOOD)
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    r = CliRunner().invoke(check_cmd, ["a.pcap", "b.pcapng", "--rules", str(rules), "--junit", str(junit)])
    assert r.exit_code == 0, r.output
    assert fake_analyze == [["a.pcap", "b.pcapng"]]
    assert "PASS chat events seen: count of sio_packets where" in r.output
    assert "2 rule(s): 2 held, 0 failed" in r.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("tests") == "2"
    quiet = CliRunner().invoke(check_cmd, ["a.pcap", "--rules", str(rules), "--quiet"])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_cli_check_fails(tmp_path: Path, fake_analyze: list[list[str]]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(EXAMPLE)
    junit = tmp_path / "junit.xml"
    r = CliRunner().invoke(check_cmd, ["a.pcap", "--rules", str(rules), "--junit", str(junit), "--quiet"])
    assert r.exit_code == 1
    out = r.output.splitlines()
    assert "FAIL close codes: 2 ws_frames row(s) with close_code outside [1000, 1001]: 1006 (2)" in out
    assert "    session_id=5 app_protocol=socketio" in out
    assert not any(line.startswith("PASS") for line in out)  # --quiet: failures only
    assert out[-1] == "6 rule(s): 3 held, 3 failed"
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "6" and root.get("failures") == "3"


def test_cli_check_unusable_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_analyze: list[list[str]]
) -> None:
    runner = CliRunner()
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "x"\ntable = "sessions"\nwhere = "a.b == 1"\nexpect = "none"\n')

    r = runner.invoke(check_cmd, ["a.pcap", "--rules", str(bad)])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "attribute access is not allowed" in r.output
    assert fake_analyze == []  # rules are checked before the capture is read

    r = runner.invoke(check_cmd, ["a.pcap", "--rules", str(tmp_path / "missing.toml")])
    assert r.exit_code == 2 and "cannot read rules" in r.output

    r = runner.invoke(check_cmd, ["a.pcap"])  # no --rules: click's usage error, also 2
    assert r.exit_code == 2

    from dissect.errors import CaptureError

    def unreadable(paths: list[str], **kw: object) -> Analysis:
        raise CaptureError("a.pcap: not a pcap or pcapng file")

    monkeypatch.setattr(dissect, "analyze", unreadable)
    r = runner.invoke(check_cmd, ["a.pcap", "--rules", str(good)])
    assert r.exit_code == 2
    assert r.output == "dissect check: a.pcap: not a pcap or pcapng file\n"

    def missing(paths: list[str], **kw: object) -> Analysis:
        raise FileNotFoundError(2, "No such file or directory", "a.pcap")

    monkeypatch.setattr(dissect, "analyze", missing)
    r = runner.invoke(check_cmd, ["a.pcap", "--rules", str(good)])
    assert r.exit_code == 2 and "No such file or directory" in r.output

    def bug(paths: list[str], **kw: object) -> Analysis:
        raise ZeroDivisionError("a bug is not an input error")

    monkeypatch.setattr(dissect, "analyze", bug)
    r = runner.invoke(check_cmd, ["a.pcap", "--rules", str(good)])
    assert r.exit_code == 1 and isinstance(r.exception, ZeroDivisionError)


def test_cli_check_rule_on_missing_summary_path(tmp_path: Path, fake_analyze: list[list[str]]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "x"\nmetric = "summary.nosuch.x"\nmax = 1\n')
    r = CliRunner().invoke(check_cmd, ["a.pcap", "--rules", str(rules)])
    assert r.exit_code == 2 and "summary has no nosuch" in r.output


def test_example_rules_file_is_valid() -> None:
    path = Path(__file__).resolve().parent.parent / "examples" / "rules.toml"
    rules = load_rules(path)
    assert len(rules.rules) >= 8
    assert rules.diff.duration_rel_tolerance > 0
    # It runs on an analysis (results may pass or fail; it must not be unusable).
    results = check_rules(synthetic_analysis(), rules)
    assert len(results) == len(rules.rules)


def test_empty_tables() -> None:
    a = Analysis()
    res = check_rules(a, parse_rules(EXAMPLE))
    assert [r.passed for r in res] == [False, True, False, True, True, True]
    assert pd.isna(a.ws_frames.close_code).all()


def test_docs_examples_are_valid() -> None:
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "ci-gating.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", doc, re.S)
    assert blocks
    for block in blocks:
        rules = parse_rules(block, "docs/ci-gating.md")
        assert rules.rules
        check_rules(synthetic_analysis(), rules)


def test_check_takes_the_shared_filters(tmp_path: Path) -> None:
    """On a real capture: session 2 was reset; --session 1 leaves it out, so the rule holds."""
    from dissect.cli import main

    cap = str(Path(__file__).resolve().parent.parent / "captures" / "sio4_websocket.pcap")
    rules = tmp_path / "r.toml"
    rules.write_text('[[rule]]\nname = "no RST"\ntable = "sessions"\nwhere = "close == \'rst\'"\nexpect = "none"\n')
    runner = CliRunner()
    assert runner.invoke(main, ["check", cap, "--rules", str(rules)]).exit_code == 1
    assert runner.invoke(main, ["check", cap, "--rules", str(rules), "--session", "1"]).exit_code == 0
    assert runner.invoke(main, ["check", cap, "--rules", str(rules), "--host", "nonsense"]).exit_code == 2


# -- a gate that cannot pass by accident ----------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# no rules yet\n", "[diff]\ncount_tolerance = 1\n"])
def test_empty_rules_are_an_error(tmp_path: Path, fake_analyze: list[list[str]], text: str) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(text)
    junit = tmp_path / "junit.xml"
    r = CliRunner().invoke(check_cmd, ["a.pcap", "--rules", str(rules), "--junit", str(junit)])
    assert r.exit_code == 2
    assert r.output == f"dissect check: {rules}: no rules ([[rule]] tables): an empty rules file would pass anything\n"
    assert fake_analyze == []
    error = ET.parse(junit).getroot().find("testsuite/testcase/error")
    assert error is not None and error.get("message") == r.output.strip()
    with pytest.raises(RulesError, match="no rules"):
        check_rules(synthetic_analysis(), parse_rules(text))
    with pytest.raises(RulesError, match="no rules"):
        assert_rules(synthetic_analysis(), {"rule": []})


def test_junit_written_on_every_exit_2(tmp_path: Path) -> None:
    """A CI publisher run with if: always() finds a JUnit file whatever stopped the gate."""
    from dissect.cli import main

    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"this is not a capture at all\n" * 4)
    cap = str(Path(__file__).resolve().parent.parent / "captures" / "ws_basic.pcap")
    cases = {
        "unreadable capture": ["check", str(garbage), "--rules", str(good)],
        "bad rules": ["check", cap, "--rules", str(tmp_path / "missing.toml")],
        "usage error": ["check", cap],
        "bad option value": ["check", cap, "--rules", str(good), "--port", "x"],
        "bad baseline": ["diff", str(garbage), cap],
        "bad current": ["diff", cap, str(garbage)],
    }
    for what, args in cases.items():
        junit = tmp_path / f"{what}.xml"
        r = CliRunner().invoke(main, [*args, "--junit", str(junit)])
        assert r.exit_code == 2, (what, r.output)
        root = ET.parse(junit).getroot()
        suite = root.find("testsuite")
        assert suite is not None and suite.get("name") == f"dissect.{args[0]}", what
        assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("1", "1", "0"), what
        error = suite.find("testcase/error")
        assert error is not None and (error.get("message") or "").startswith(f"dissect {args[0]}: "), what
        if what in ("unreadable capture", "bad rules", "bad baseline", "bad current"):
            assert error.get("message") == r.output.strip(), what  # the same line as on stderr
    # --junit=PATH is found too when click stops at the command line.
    junit = tmp_path / "eq.xml"
    assert CliRunner().invoke(main, ["check", cap, f"--junit={junit}"]).exit_code == 2
    assert ET.parse(junit).getroot().get("errors") == "1"


def test_offenders_show_detail_and_source_file(tmp_path: Path) -> None:
    """The CONNECT_ERROR message (handshakes.detail) is in the offender line, as the peers recorded
    it; with several captures each line names its file (sessions.source_file)."""
    import json

    captures = Path(__file__).resolve().parent.parent / "captures"
    refused, sio4 = captures / "sio4_connect_error.pcap", captures / "sio4_websocket.pcap"
    truth = json.loads((captures / "sio4_connect_error.truth.json").read_text())
    errors = [n for n in truth["namespaces"] if not n["ok"]]
    rules = parse_rules('[[rule]]\nname = "hs"\ntable = "handshakes"\nwhere = "not ok"\nexpect = "none"\n'
                        '[[rule]]\nname = "no RST"\ntable = "sessions"\nwhere = "close == \'rst\'"\n'
                        'expect = "none"\n')
    one = by_name(check_rules(dissect.analyze(str(refused), quiet=True), rules))
    lines = one["hs"].offenders
    assert len(lines) == len(errors)
    for n, line in zip(errors, lines, strict=True):
        assert line.endswith(f'layer=socketio detail="namespace={n["namespace"]} error={n["error"]}"')
    assert not any("source_file" in line for line in lines)

    both = dissect.analyze([str(refused), str(sio4)], quiet=True)
    res = by_name(check_rules(both, rules))
    assert all(line.endswith(f"source_file={refused}") for line in res["hs"].offenders)
    s = both.sessions
    rst = s[s.close == "rst"]
    assert len(rst) >= 1
    assert res["no RST"].offenders == [
        f"session_id={i} app_protocol={p} source_file={f}"
        for i, p, f in zip(rst.session_id, rst.app_protocol, rst.source_file, strict=True)]
    assert {str(sio4)} <= set(rst.source_file)


SOCKET_RULES = ["no ping timeout", "no transport error", "every socket that asked for recovery recovered",
                "pongs within 100 ms", "broadcasts reach every client within 50 ms"]


@pytest.mark.parametrize("capture", ["sio4_ping_timeout.pcap", "sio4_disconnects.pcapng", "sio4_recovery.pcap",
                                     "sio4_broadcasts.pcap", "sio_python_disconnects.pcapng"])
def test_socket_rules_of_the_example_against_the_peers_truth(capture: str) -> None:
    """examples/rules.toml's Socket.IO gates fail exactly where the peers recorded a ping timeout or
    an expired recovery (captures/*.truth.json, "sockets")."""
    import json

    root = Path(__file__).resolve().parent.parent
    rules = parse_rules((root / "examples" / "rules.toml").read_text())
    rules.rules = [r for r in rules.rules if r.name in SOCKET_RULES]
    assert len(rules.rules) == len(SOCKET_RULES)
    res = by_name(check_rules(dissect.analyze(str(root / "captures" / capture)), rules))
    sockets = json.loads((root / "captures" / (capture.rsplit(".", 1)[0] + ".truth.json")).read_text())["sockets"]
    timeouts = sum(1 for s in sockets if s["server_disconnect_reason"] == "ping timeout")
    expired = sum(1 for s in sockets if s["recovered"] is False)
    assert res["no ping timeout"].passed == (timeouts == 0)
    assert res["no ping timeout"].total_offenders == timeouts
    assert res["every socket that asked for recovery recovered"].total_offenders == expired
    assert res["no transport error"].passed
    assert res["broadcasts reach every client within 50 ms"].passed
