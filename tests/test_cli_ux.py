"""What a new user and a CI job meet on the command line (issue 14): a bad or reused ``--out``,
IPv6 endpoints and ``--host [::1]``, unreadable files among readable ones, filter mistakes, the
terminal summary's wording, and ``dissect summary --sessions``."""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import dissect
from dissect.cli import main
from dissect.output.report_dir import REPORT_FILES, TMP_PREFIX, is_report
from dissect.output.tables import Analysis
from dissect.output.writers import MemoryCollector
from dissect.records import TABLES
from dissect.report.sessions_list import SessionList
from dissect.run.filters import Filters
from dissect.run.local import run

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
WS = str(CAPTURES / "ws_basic.pcap")
SIO = str(CAPTURES / "sio4_websocket.pcap")
TLS6 = CAPTURES / "tls12_ws_aesgcm.pcap"  # connection B on ::1 (its truth.json's "about")


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


def one_line_exit_2(code: int, err: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("dissect: "), err
    assert "Traceback" not in err


def truth(name: str) -> dict:
    return json.loads((CAPTURES / f"{name}.truth.json").read_text())


# -- 2: a bad --out is one line, exit 2 ----------------------------------------------------------------


def test_out_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file.pcap").write_bytes(b"x")
    code, _, err = invoke("report", WS, "--out", str(tmp_path / "file.pcap" / "sub"), "-q")
    one_line_exit_2(code, err)
    assert "cannot create the directory (Not a directory)" in err


def test_out_that_cannot_be_created_is_one_line() -> None:
    code, _, err = invoke("report", WS, "--out", "/proc/nope", "-q")
    one_line_exit_2(code, err)
    assert "--out /proc/nope: cannot create the directory" in err


def test_out_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "in_the_way").write_bytes(b"keep me")
    code, _, err = invoke("report", WS, "--out", str(tmp_path / "in_the_way"), "-q")
    one_line_exit_2(code, err)
    assert "exists and is not a directory" in err
    assert (tmp_path / "in_the_way").read_bytes() == b"keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_read_only_out_is_one_line(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = invoke("report", WS, "--out", str(ro), "-q")
    finally:
        ro.chmod(0o755)
    one_line_exit_2(code, err)
    assert "cannot write in the directory (Permission denied)" in err


def test_unwritable_out_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same as a read-only directory where the tests run as root: creating the report's
    temporary directory fails."""
    def denied(*_a: object, **_k: object) -> str:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("dissect.output.report_dir.tempfile.mkdtemp", denied)
    code, _, err = invoke("report", WS, "--out", str(tmp_path / "new"), "-q")
    one_line_exit_2(code, err)
    assert "cannot write in the directory (Permission denied)" in err
    assert not (tmp_path / "new").exists()  # the directory it had made is gone again


# -- 3: a report directory holds one report -----------------------------------------------------------


def files_of(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_reused_out_holds_only_the_new_report(tmp_path: Path, jobs: str) -> None:
    out = tmp_path / "r"
    code, _, err = invoke("report", SIO, "--out", str(out), "-q", "--jobs", jobs)
    assert code == 0, err
    assert {"report.html", "sessions.csv", "summary.json"} <= files_of(out)
    code, _, err = invoke("report", WS, "--out", str(out), "-q", "--jobs", jobs, "--no-html", "--format", "jsonl")
    assert code == 0, err
    assert files_of(out) == {f"{t}.jsonl" for t in TABLES} | {"summary.json"}
    fresh = dissect.analyze(WS)
    again = Analysis.from_dir(str(out))
    assert list(again.sessions.server_port) == list(fresh.sessions.server_port)
    assert len(again.ws_frames) == len(fresh.ws_frames) and again.sio_packets.empty
    assert json.loads((out / "summary.json").read_text())["files"][0]["path"] == WS


def test_reused_out_parquet_then_csv(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    out = tmp_path / "r"
    assert invoke("report", SIO, "--out", str(out), "-q", "--format", "parquet", "--no-html")[0] == 0
    assert invoke("report", WS, "--out", str(out), "-q", "--no-html")[0] == 0
    assert files_of(out) == {f"{t}.csv" for t in TABLES} | {"summary.json"}


def test_foreign_files_beside_a_report_stay(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert invoke("report", SIO, "--out", str(out), "-q")[0] == 0
    (out / "NOTES.txt").write_text("mine")
    assert invoke("report", WS, "--out", str(out), "-q", "--no-html")[0] == 0
    assert (out / "NOTES.txt").read_text() == "mine" and "report.html" not in files_of(out)


def test_non_empty_directory_without_a_report_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep")
    (out / "sessions.csv").write_text("not dissect's")  # a table's name is not enough
    code, _, err = invoke("report", WS, "--out", str(out), "-q")
    one_line_exit_2(code, err)
    assert "not empty and holds no dissect report" in err
    assert files_of(out) == {"thesis.tex", "sessions.csv"}
    assert (out / "sessions.csv").read_text() == "not dissect's"


def test_empty_directory_is_fine(tmp_path: Path) -> None:
    assert invoke("report", WS, "--out", str(tmp_path), "-q", "--no-html")[0] == 0
    assert is_report(str(tmp_path))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_failed_run_leaves_the_earlier_report_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    jobs: str) -> None:
    out = tmp_path / "r"
    assert invoke("report", SIO, "--out", str(out), "-q")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dissect.cli._write_html", full)  # after the tables and summary.json
    code, _, err = invoke("report", WS, "--out", str(out), "-q", "--jobs", jobs)
    one_line_exit_2(code, err)
    assert "cannot write the report (No space left on device)" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not any(n.startswith(TMP_PREFIX) for n in files_of(out))


def test_is_report_needs_summary_and_every_table(tmp_path: Path) -> None:
    assert invoke("report", WS, "--out", str(tmp_path / "r"), "-q", "--no-html")[0] == 0
    assert is_report(str(tmp_path / "r"))
    assert REPORT_FILES >= files_of(tmp_path / "r")
    (tmp_path / "r" / "http.csv").unlink()
    assert not is_report(str(tmp_path / "r"))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "summary.json").write_text('{"schema": "x"}')
    assert not is_report(str(tmp_path / "s"))


# -- 7: IPv6 endpoints ---------------------------------------------------------------------------------


def test_host_in_brackets(tmp_path: Path) -> None:
    v6_ports = {c["client_port"] for c in truth("tls12_ws_aesgcm")["connections"]} - {60644}  # A is IPv4
    plain = dissect.analyze(str(TLS6), host="::1")
    bracketed = dissect.analyze(str(TLS6), host="[::1]")
    assert set(plain.sessions.client_port) == set(bracketed.sessions.client_port) == v6_ports
    assert Filters.make(host="[::1]") == Filters.make(host="::1")
    code, out, err = invoke("summary", str(TLS6), "--host", "[::1]", "--sessions")
    assert code == 0, err
    (port,) = v6_ports
    assert f"[::1]:{port}  ->  [::1]:9403" in out
    code, _, err = invoke("summary", str(TLS6), "--host", "[::1")
    assert code == 2 and "is not an IP address" in err


# -- 13: smaller things --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 4, 20, 23])
def test_cut_pcap_header_is_unreadable(tmp_path: Path, size: int) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(Path(WS).read_bytes()[:size])
    code, _, err = invoke("summary", str(cut))
    one_line_exit_2(code, err)
    assert ("empty file" if size == 0 else f"file ends inside the pcap file header ({size} of 24 bytes)") in err


def test_cut_pcapng_header_is_unreadable(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes((CAPTURES / "ws_multi.pcapng").read_bytes()[:10])
    code, _, err = invoke("report", str(cut), "--out", str(tmp_path / "o"))
    one_line_exit_2(code, err)
    assert "file ends inside the pcapng section header (10 of 12 bytes)" in err
    assert not (tmp_path / "o").exists()


def test_unreadable_file_in_a_directory_is_skipped(tmp_path: Path) -> None:
    d = tmp_path / "caps"
    d.mkdir()
    shutil.copy(WS, d / "a.pcap")
    (d / "b.pcap").write_bytes(Path(WS).read_bytes()[:20])
    shutil.copy(SIO, d / "c.pcap")
    out = tmp_path / "r"
    code, _, err = invoke("report", str(d), "--out", str(out), "--no-html")
    assert code == 2
    assert f"{d / 'b.pcap'}: file ends inside the pcap file header" in err and "skipped" in err
    summary = json.loads((out / "summary.json").read_text())
    assert [f["path"] for f in summary["files"]] == [str(d / "a.pcap"), str(d / "c.pcap")]
    assert summary["skipped_files"] == [{"path": str(d / "b.pcap"),
                                         "reason": "file ends inside the pcap file header (20 of 24 bytes), "
                                                   "not a capture"}]
    both = dissect.analyze([str(d / "a.pcap"), str(d / "c.pcap")])
    assert len(Analysis.from_dir(str(out)).sessions) == len(both.sessions) > 1
    code, text, err = invoke("summary", str(d))
    assert code == 2 and "skipped" in text and "b.pcap" in err


def test_every_file_unreadable_names_each(tmp_path: Path) -> None:
    (tmp_path / "a.pcap").write_bytes(b"")
    (tmp_path / "b.pcap").write_bytes(b"junk")
    code, _, err = invoke("summary", str(tmp_path))
    assert code == 2 and err.count("\n") == 2
    assert "a.pcap: empty file" in err and "b.pcap: not a pcap or pcapng capture" in err


@pytest.mark.parametrize("command", [
    ["check", "--rules", str(CAPTURES.parent / "examples" / "rules.toml")],
    ["diff", WS],
    ["crosscheck"],
])
def test_judging_commands_stop_at_an_unreadable_capture(tmp_path: Path, command: list[str]) -> None:
    """check, diff and crosscheck judge the whole set: one unreadable capture among readable ones is
    one line naming it and exit 2, never a verdict over part of the set (README "Bad input")."""
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"junk")
    args = [command[0], SIO, str(bad), *command[1:]] if command[0] != "diff" else ["diff", WS, f"{SIO}", str(bad)]
    code, out, err = invoke(*args)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and f"{bad}: not a pcap or pcapng capture" in err, err
    assert "Traceback" not in out + err


def test_port_out_of_range_is_a_usage_error() -> None:
    code, _, err = invoke("summary", WS, "--port", "99999")
    assert code == 2 and "0<=x<=65535" in err
    with pytest.raises(ValueError, match="not a port number"):
        dissect.analyze(WS, port=70000)
    assert Filters.make(port="9360").ports == frozenset({9360})


def test_filter_matching_nothing_says_so(tmp_path: Path) -> None:
    code, _, err = invoke("summary", WS, "--port", "1")
    assert code == 0 and "no flow matched the filters" in err
    code, _, err = invoke("report", WS, "--out", str(tmp_path / "r"), "--host", "10.9.9.9", "--no-html")
    assert code == 0 and "no flow matched the filters" in err
    assert "no flow matched" not in invoke("summary", WS, "--port", "1", "-q")[2]
    assert "no flow matched" not in invoke("summary", WS)[2]
    code, _, err = invoke("summary", SIO, "--namespace", "/nowhere")
    assert code == 0 and "no Socket.IO packet matched --namespace" in err


def test_terminal_wording() -> None:
    code, out, _ = invoke("summary", WS)
    assert code == 0
    assert "1 session\n" in out and "1 sessions" not in out
    tcp = next(line for line in out.splitlines() if line.strip().startswith("tcp ") and "failed" in line)
    assert "n=" not in tcp and "(0 failed)  p50" in tcp
    assert "no WebSocket traffic found" not in out
    code, out, _ = invoke("summary", str(CAPTURES / "udp_exchange.pcapng"))
    assert "Handshakes" not in out and "no WebSocket traffic found" in out
    code, out, _ = invoke("summary", str(CAPTURES / "http_keepalive.pcap"))
    assert "no WebSocket traffic found" in out


def test_gzip_capture_shows_the_capture_bytes(tmp_path: Path) -> None:
    packed = tmp_path / "ws.pcap.gz"
    packed.write_bytes(gzip.compress(Path(WS).read_bytes()))
    code, out, _ = invoke("summary", str(packed), "--json")
    f = json.loads(out)["files"][0]
    assert f["bytes"] == packed.stat().st_size and f["uncompressed_bytes"] == Path(WS).stat().st_size
    assert "uncompressed_bytes" not in json.loads(invoke("summary", WS, "--json")[1])["files"][0]
    code, out, _ = invoke("summary", str(packed))
    assert "272.4 KiB (gzip: " in out and "on disk" in out


# -- 15: dissect summary --sessions --------------------------------------------------------------------


def session_lines(out: str) -> list[list[str]]:
    lines = out.split("Sessions list\n", 1)[1].splitlines()
    return [line.split() for line in lines[1:]]


def test_sessions_list_agrees_with_the_peers() -> None:
    code, out, err = invoke("summary", str(CAPTURES / "ws_multi.pcapng"), "--sessions")
    assert code == 0, err
    rows = session_lines(out)
    conns = {c["client_port"]: c for c in truth("ws_multi")["connections"]}
    assert len(rows) == len(conns)
    for cells in rows:
        sid, proto, client, arrow, server, app = cells[:6]
        port = int(client.rsplit(":", 1)[1])
        c = conns[port]
        assert proto == "tcp" and arrow == "->" and server == f"127.0.0.1:{c['server_port']}"
        assert app == "websocket" and cells[6] == "-"  # no TLS
        http, ws_msgs, sio, anomalies = (int(x) for x in cells[8:12])
        # ws_messages rows hold data messages and control frames (close, ping, pong)
        assert (http, ws_msgs, sio, anomalies) == (1, len(c["messages"]) + len(c["control"]), 0, 0)
        assert cells[12:15] == ["fin", "ws", str(c["close"]["code"])]
        assert cells[15] == "tcp" and cells[17] == "websocket"


def test_sessions_list_tls_version_and_failures(tmp_path: Path) -> None:
    code, out, _ = invoke("summary", str(TLS6), "--sessions", "--tls-keylog", str(TLS6.with_suffix(".keys")))
    assert code == 0
    rows = session_lines(out)
    conns = {c["client_port"]: c for c in truth("tls12_ws_aesgcm")["connections"]}
    assert len(rows) == len(conns) == 2
    for cells in rows:
        c = conns[int(cells[2].rsplit(":", 1)[1])]
        assert cells[6:8] == ["TLS", "1.2"]  # both connections are TLS 1.2 (truth's "about")
        close = cells.index("ws")
        assert cells[close + 1] == str(c["close"]["code"])
        assert cells[close + 2: close + 3] == ["tcp"] and "tls" in cells
    # the upgrade the server refused with 400 (the peers' http list): a failed websocket handshake
    code, out, _ = invoke("summary", str(CAPTURES / "http_ws_upgrade_400.pcap"), "--sessions")
    refused = {h["client_port"] for h in truth("http_ws_upgrade_400")["http"] if h["status"] == 400}
    for cells in session_lines(out):
        port = int(cells[2].rsplit(":", 1)[1])
        ws = cells[cells.index("websocket", 6) + 1]
        assert ws.endswith("!") == (port in refused)


def test_sessions_list_and_json_do_not_mix() -> None:
    code, _, err = invoke("summary", WS, "--sessions", "--json")
    assert code == 2 and "--sessions" in err


def test_session_list_counts_rows_without_keeping_them() -> None:
    collector = MemoryCollector()
    run(SIO, [collector])
    listing = SessionList()
    for name, rows in collector.rows.items():
        listing.add(name, rows if name == "sessions" else rows * 500)
    assert sorted(listing.lines) == sorted(r.session_id for r in collector.rows["sessions"])
    for sid, line in listing.lines.items():
        sio = sum(1 for r in collector.rows["sio_packets"] if r.session_id == sid)
        assert line.counts["sio_packets"] == 500 * sio
        # what a line keeps is a fixed record, whatever the number of rows
        assert set(line.counts) <= {*TABLES, "anomalies"} and len(line.handshakes) <= 5


def test_a_report_of_an_earlier_dissect_is_replaced(tmp_path: Path) -> None:
    """A report without the tables added since (sio_sockets) is still a dissect report."""
    out = tmp_path / "old"
    out.mkdir()
    (out / "summary.json").write_text('{"schema": 1, "totals": {}}')
    for t in ("sessions", "handshakes", "http", "ws_frames", "ws_messages", "sio_packets"):
        (out / f"{t}.csv").write_text("session_id\n")
    cap = str(Path(__file__).resolve().parent.parent / "captures" / "sio4_websocket.pcap")
    res = CliRunner().invoke(main, ["report", cap, "--out", str(out), "-q", "--no-html", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert (out / "sio_sockets.csv").exists() and len((out / "sessions.csv").read_text().splitlines()) == 3


def test_a_killed_run_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    """SIGKILL leaves the temporary directory behind; the next report into the directory removes
    it (its process no longer runs), and leaves those of running processes alone."""
    import subprocess
    import sys

    from dissect.output.report_dir import remove_stale

    out = tmp_path / "r"
    assert invoke("report", SIO, "--out", str(out), "-q", "--no-html")[0] == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = __import__("socket").gethostname().replace("-", "_")
    stale = out / f"{TMP_PREFIX}{host}-{dead.pid}-abc"
    running = out / f"{TMP_PREFIX}{host}-{os.getppid()}-def"
    other_host = out / f"{TMP_PREFIX}elsewhere-{dead.pid}-ghi"
    for d in (stale, running, other_host):
        d.mkdir()
        (d / "sessions.csv").write_text("partial")
    assert invoke("report", SIO, "--out", str(out), "-q", "--no-html")[0] == 0
    assert not stale.exists() and running.exists() and other_host.exists()
    assert remove_stale(str(out)) == []


def test_sigterm_removes_the_partial_report(tmp_path: Path) -> None:
    """SIGTERM (kill, a CI timeout) ends a run as Ctrl-C does: no temporary directory is left and
    the earlier report stays whole."""
    import signal
    import subprocess
    import sys
    import time

    from tests import craft

    out = tmp_path / "r"
    assert invoke("report", SIO, "--out", str(out), "-q", "--no-html")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    big = tmp_path / "big.pcap"
    pk = []
    for i in range(3000):  # enough connections to take a few seconds
        conn = craft.handshake_and_data(isn_c=1000 + i, t0=1_700_000_000 + i * 0.01)
        pk.extend((ts, craft.ethernet(ip)) for ts, ip in conn)
    big.write_bytes(craft.write_pcap(pk * 10))
    proc = subprocess.Popen([sys.executable, "-m", "dissect", "report", str(big), "--out", str(out), "-q"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(n.startswith(TMP_PREFIX) for n in os.listdir(out)):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, "the run ended before the signal; make the capture bigger"
    assert "interrupted" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
