"""TLS with keys that do not fit, end to end on real captures: the session is reported with the
reason, nothing else is lost, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

import dissect
from dissect.cli import main

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
CAP = CAPTURES / "tls12_ws_aesgcm.pcap"


def tls_details(a: dissect.Analysis) -> list[str]:
    hs = a.handshakes
    return list(hs[hs.layer == "tls"].detail)


def test_a_key_log_of_other_sessions(tmp_path: Path) -> None:
    a = dissect.analyze(str(CAP), tls_keylog=str(CAPTURES / "tls12_cbc.keys"))
    assert all("decrypted=false (no key for this session)" in d for d in tls_details(a))
    assert len(a.sessions) == 2 and not a.sessions.tls_decrypted.any() and len(a.ws_frames) == 0
    assert set(a.sessions.app_protocol) == {"tls"} and set(a.sessions.tls_version) == {"TLS 1.2"}


def test_a_wrong_secret(tmp_path: Path) -> None:
    keys = (CAPTURES / "tls12_ws_aesgcm.keys").read_text()
    # flip every master secret's last hex digit: the same client randoms, wrong keys
    wrong = re.sub(r"([0-9a-f])(\s*)$", lambda m: ("0" if m.group(1) != "0" else "1") + m.group(2), keys, flags=re.M)
    path = tmp_path / "wrong.keys"
    path.write_text(wrong)
    a = dissect.analyze(str(CAP), tls_keylog=str(path))
    assert all("wrong key" in d for d in tls_details(a)), tls_details(a)
    assert len(a.ws_frames) == 0 and len(a.sessions) == 2
    good = dissect.analyze(str(CAP), tls_keylog=str(CAPTURES / "tls12_ws_aesgcm.keys"))
    assert list(good.sessions.session_id) == list(a.sessions.session_id)  # nothing else changed
    tcp_ok = [list(x.handshakes[x.handshakes.layer == "tcp"].ok) for x in (good, a)]
    assert tcp_ok[0] == tcp_ok[1]


def test_unusable_key_log_files_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.keys"
    junk.write_text("this is not a key log\n")
    for keys in (str(junk), str(tmp_path / "missing.keys")):
        res = CliRunner().invoke(main, ["summary", str(CAP), "--tls-keylog", keys])
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output


def test_garbage_after_a_client_hello_is_an_anomaly_not_a_crash(tmp_path: Path) -> None:
    """A TLS record stream cut and followed by garbage: the session row says what went wrong."""
    import dpkt

    with CAP.open("rb") as f:
        frames = list(dpkt.pcap.Reader(f))
    out = tmp_path / "garbled.pcap"
    with out.open("wb") as f:
        w = dpkt.pcap.Writer(f)
        for i, (ts, buf) in enumerate(frames):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            tcp = getattr(ip, "data", None)
            if i > 8 and isinstance(tcp, dpkt.tcp.TCP) and len(tcp.data) > 20 and i % 3 == 0:
                tcp.data = b"\xff" * len(tcp.data)  # garbage in place of TLS records
                ip.sum = 0
                tcp.sum = 0
            w.writepkt(bytes(eth), ts)
    a = dissect.analyze(str(out), tls_keylog=str(CAPTURES / "tls12_ws_aesgcm.keys"))
    assert len(a.sessions) == 2
    assert a.sessions.anomaly.fillna("").str.contains("tls-").any()
